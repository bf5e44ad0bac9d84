import CPythonShim
import CodeShareFormat

/// `codeshare._core`: the C entry points. Everything here converts between
/// Python objects and the Swift writer and reader; no archive logic.
///
///     write(entries: list[tuple[str, code, bytes, tuple | None]], manifest: bytes, together: bool, fd: int) -> int
///     Archive(path): an open archive (archive_type.c, ArchiveObject.swift)
///     file_unchanged(path: str, size: int, mtime_ns: int, hashed=None) -> bool
///     version_sum(classes: tuple, modules: tuple) -> int | None
///     replacement(classes, modules, held, files) -> (str, str) | None
///     same_items(a: list, b: list) -> bool
///     loader_methods(cls) -> (get_code, exec_module)
///     observed(function, observer) -> method
///     in_forked_children(work, count) -> list[bytes | None]
///     ArchiveError: the exception of every refused archive
///     ForeignArchiveError: its subclass for a sound archive of another
///         interpreter build, -O level or -X no_debug_ranges setting

private var archiveError: PyObjectPointer!
private var foreignArchiveError: PyObjectPointer!

private typealias FastFunction = @convention(c) (PyObjectPointer?, UnsafePointer<PyObjectPointer?>?, Int) -> PyObjectPointer?

func raiseArchiveError(_ error: ArchiveError) {
    let type: PyObjectPointer = error.isForeign ? foreignArchiveError : archiveError
    guard case .io(let code) = error, let message = strerror(code) else { return raise(type, error.reason) }
    raise(type, error.reason, separator: ": ", detail: UnsafeRawBufferPointer(start: message, count: strlen(message)))
}

/// OSError(errno, strerror), as os.write raises it.
private func raiseOSError(_ error: Errno) {
    guard let arguments = PyTuple_New(2) else { return }
    defer { cs_decref(arguments) }
    PyTuple_SetItem(arguments, 0, PyLong_FromLong(Int(error.code)))
    PyTuple_SetItem(arguments, 1, PyUnicode_DecodeLocale(strerror(error.code), nil))
    if PyErr_Occurred() == nil { PyErr_SetObject(PyExc_OSError, arguments) }
}

private func write(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    let usage: StaticString = "write() takes a list of (name, code, metadata, set orders) tuples, a manifest (bytes), a bool and a file descriptor"
    guard count == 4, let list = args![0], cs_is_list(list) != 0, let manifest = args![1], cs_is_bytes(manifest) != 0 else {
        raise(PyExc_TypeError, usage)
        return nil
    }
    let together = PyObject_IsTrue(args![2])
    if together < 0 { return nil }
    let descriptor = PyLong_AsLong(args![3])
    if descriptor == -1 && PyErr_Occurred() != nil { return nil }
    guard descriptor >= 0 && descriptor <= Int(Int32.max) else {
        raise(PyExc_ValueError, usage)
        return nil
    }
    for index in 0..<PyList_Size(list) {
        let item = PyList_GetItem(list, index)!
        guard cs_is_tuple(item) != 0, PyTuple_Size(item) == 4, cs_is_str(PyTuple_GetItem(item, 0)!) != 0,
              PyTuple_GetItem(item, 1)!.type == cs_code_type(), cs_is_bytes(PyTuple_GetItem(item, 2)!) != 0,
              PyTuple_GetItem(item, 3)! == cs_none() || cs_is_tuple(PyTuple_GetItem(item, 3)!) != 0
        else {
            raise(PyExc_TypeError, "write() entries are (name: str, code, metadata: bytes, set orders: tuple or None)")
            return nil
        }
    }
    // The writer's tables are Swift arrays and dictionaries, which trap when
    // memory runs out: in a child, a trap ends the child, not the program
    // being dumped (its exit status, and its output still buffered).
    let output = FileDescriptor(raw: Int32(descriptor))
    let report: WriterReport
    switch runInForkedChild({ writeArchive(list, manifest: manifest, together: together != 0, to: output) }) {
    case .reported(let reported):
        report = reported
    case .notStarted:
        // No child to be had (the program handles SIGCHLD; a process limit;
        // strict overcommit refusing a copy of a large program): the writer
        // runs here, as it did before it had a child of its own.
        report = writeArchive(list, manifest: manifest, together: together != 0, to: output)
    case .killed(let signal) where signal == SIGILL || signal == SIGTRAP:
        raise(archiveError, "the writer trapped (out of memory, or a codeshare bug)")
        return nil
    case .killed(let signal):
        let name = strsignal(signal)!
        raise(archiveError, "the writer was killed by a signal: ", detail: UnsafeRawBufferPointer(start: name, count: strlen(name)))
        return nil
    case .silent:
        raise(archiveError, "the writer ended without saying how")
        return nil
    }
    switch report.outcome {
    case .written:
        return PyLong_FromUnsignedLongLong(report.value)
    case .unsupportedConstant:
        var length = 0
        guard report.value < UInt64(PyList_Size(list)),
              let name = PyUnicode_AsUTF8AndSize(PyTuple_GetItem(PyList_GetItem(list, Int(report.value))!, 0)!, &length)
        else {
            if PyErr_Occurred() == nil { raise(archiveError, "cannot archive a constant of this type") }
            return nil
        }
        raise(archiveError, "cannot archive a constant of this type in module ",
              detail: UnsafeRawBufferPointer(start: name, count: length))
    case .io:
        raiseOSError(Errno(code: Int32(report.value)))
    case .python:
        report.detail.span.withUnsafeBytes {
            raise(archiveError, "the writer raised ", detail: UnsafeRawBufferPointer(rebasing: $0[..<report.detailCount]))
        }
    }
    return nil
}

/// work(0) here while work(1) ... work(count) each run in a child forked
/// for it (ForkedShares): [work(0), then what each child's work returned,
/// bytes, or None where no child ran it or its report did not come whole
/// (it raised, returned no bytes, or was killed)]. The caller does those
/// shares itself.
private func inForkedChildren(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    guard count == 2, let work = args![0], PyCallable_Check(work) != 0 else {
        raise(PyExc_TypeError, "in_forked_children() takes a callable and a number of children")
        return nil
    }
    let children = PyLong_AsLong(args![1])
    if children == -1 && PyErr_Occurred() != nil { return nil }
    guard children >= 0 && children <= 1024 else {
        raise(PyExc_ValueError, "in_forked_children() starts 0 to 1024 children")
        return nil
    }
    func call(_ share: Int) -> PyObjectPointer? {
        guard let number = PyLong_FromLong(share) else { return nil }
        defer { cs_decref(number) }
        return withUnsafeTemporaryAllocation(of: PyObjectPointer?.self, capacity: 1) {
            $0[0] = number
            return PyObject_Vectorcall(work, $0.baseAddress, 1, nil)
        }
    }
    let started = ForkedShares.start(count: children) { share, report in
        guard let result = call(share), cs_is_bytes(result) != 0 else { return }
        ForkedShares.send(UnsafeRawBufferPointer(start: cs_bytes_data(result), count: cs_size(result)), to: report)
    }
    guard let shares = started else { return PyErr_NoMemory() }
    defer { shares.deallocate() }
    let own = call(0)
    let results = own.flatMap { _ in PyList_New(children + 1) }
    // Every child is waited for, whatever failed here.
    var raised: (PyObjectPointer?, PyObjectPointer?, PyObjectPointer?) = (nil, nil, nil)
    if results == nil { PyErr_Fetch(&raised.0, &raised.1, &raised.2) }
    if let results { PyList_SetItem(results, 0, own) } else { own.map { cs_decref($0) } }
    for share in stride(from: 1, through: children, by: 1) {
        // A report too large to copy is one that did not come.
        let report = shares.report(of: share) { PyBytes_FromStringAndSize($0.baseAddress, $0.count) }
        if report == nil { PyErr_Clear() }
        guard let results else {
            report.map { cs_decref($0) }
            continue
        }
        if report == nil { cs_incref(cs_none()) }
        PyList_SetItem(results, share, report ?? cs_none())
    }
    if results == nil { PyErr_Restore(raised.0, raised.1, raised.2) }
    return results
}

/// What the writer's child sends back to `write`: of a fixed size, so that
/// `write` knows whether it came whole.
private struct WriterReport {
    enum Outcome: UInt8 {
        case written, unsupportedConstant, io, python
    }
    var outcome: Outcome
    /// The archive's size (`.written`), the index of the module that holds
    /// the constant (`.unsupportedConstant`, or beyond the list if no one
    /// module), or the errno (`.io`).
    var value: UInt64 = 0
    /// `.python`: the exception, UTF-8, cut to fit.
    var detail = InlineArray<256, UInt8>(repeating: 0)
    var detailCount = 0

    init(_ outcome: Outcome, _ value: UInt64 = 0) {
        self.outcome = outcome
        self.value = value
    }

    /// `.python`, with the exception set (which it clears) as a traceback's
    /// last line says it: its type's name, then its text if it has any.
    static func pythonError() -> WriterReport {
        var report = WriterReport(.python)
        var type: PyObjectPointer? = nil, value: PyObjectPointer? = nil, traceback: PyObjectPointer? = nil
        PyErr_Fetch(&type, &value, &traceback)
        PyErr_NormalizeException(&type, &value, &traceback)
        guard let type else { return report }
        let name = UnsafeMutableRawPointer(type).assumingMemoryBound(to: PyTypeObject.self).pointee.tp_name!
        report.append(UnsafeRawBufferPointer(start: name, count: strlen(name)))
        var length = 0
        if let value, let text = PyObject_Str(value), let utf8 = PyUnicode_AsUTF8AndSize(text, &length), length > 0 {
            let separator: StaticString = ": "
            report.append(UnsafeRawBufferPointer(start: separator.utf8Start, count: separator.utf8CodeUnitCount))
            report.append(UnsafeRawBufferPointer(start: utf8, count: length))
        }
        PyErr_Clear()
        return report
    }

    /// Adds `bytes` to the detail, as many as fit.
    private mutating func append(_ bytes: UnsafeRawBufferPointer) {
        for byte in bytes.prefix(detail.count - detailCount) {
            detail[detailCount] = byte
            detailCount += 1
        }
    }
}

/// The writer's side of `write` (in its child, or in this process if there
/// is none): the archive of `list`'s entries, written to `output`, and how
/// that went.
private func writeArchive(_ list: PyObjectPointer, manifest: PyObjectPointer, together: Bool,
                          to output: FileDescriptor) -> WriterReport {
    var modules: [ModuleEntry] = []
    for index in 0..<PyList_Size(list) {
        let item = PyList_GetItem(list, index)!
        guard let name = utf8Bytes(PyTuple_GetItem(item, 0)!) else { return .pythonError() }
        let metadata = PyTuple_GetItem(item, 2)!
        modules.append(ModuleEntry(
            name: name, code: PyTuple_GetItem(item, 1)!,
            metadata: [UInt8](UnsafeRawBufferPointer(start: cs_bytes_data(metadata), count: metadata.size)),
            setRecipes: PyTuple_GetItem(item, 3)! == cs_none() ? nil : PyTuple_GetItem(item, 3)!))
    }
    var writer = ArchiveWriter()
    defer { writer.release() }
    do throws(WriteFailure) {
        for (index, entry) in modules.enumerated() {
            do throws(WriteFailure) {
                try writer.analyze(entry.code, module: index, setRecipes: entry.setRecipes)
            } catch .unsupportedConstant {
                return WriterReport(.unsupportedConstant, UInt64(index))
            }
        }
        let size = try writer.build(modules, manifest: [UInt8](UnsafeRawBufferPointer(start: cs_bytes_data(manifest), count: manifest.size)),
                                    policy: together ? .loadedTogether : .loadedAlone,
                                    identity: .running(), createdTime: UInt64(time(nil)), to: output)
        return WriterReport(.written, size)
    } catch .unsupportedConstant {
        return WriterReport(.unsupportedConstant, UInt64(modules.count))
    } catch .io(let error) {
        return WriterReport(.io, UInt64(error.code))
    } catch {
        return .pythonError()
    }
}

/// Whether two lists hold the same objects, or equal strs, in the same
/// order. No object's __eq__ runs: the path hooks and a search path may
/// hold the program's objects, whose __eq__ plain import never calls.
private func sameItems(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    guard count == 2, let first = args![0], let second = args![1], cs_is_list(first) != 0, cs_is_list(second) != 0 else {
        raise(PyExc_TypeError, "same_items() takes two lists")
        return nil
    }
    let size = PyList_Size(first)
    guard size == PyList_Size(second) else { return PyBool_FromLong(0) }
    for index in 0..<size {
        let one = PyList_GetItem(first, index)!, other = PyList_GetItem(second, index)!
        guard one == other || (cs_is_str(one) != 0 && cs_is_str(other) != 0 && PyUnicode_Compare(one, other) == 0) else {
            return PyBool_FromLong(0)
        }
    }
    return PyBool_FromLong(1)
}

// finder.py's ArchiveLoader: get_code and exec_module are importlib's own
// (SourceFileLoader's, the class's base), called from these C methods
// around codeshare's part, `loader._archived_code(fullname)` before and
// `finder._executed(loader)` after. A C call leaves no frame between importlib's
// frames, which the interpreter trims from the traceback of an exception
// raised while importing (the body's, or the compiler's on a changed
// source) and `warnings` skips to find the importer; a Python method of
// codeshare there would show, keep them all, or pass for the importer.
// Method descriptors of the class: no object per loader (bound methods and
// partials would feed the collector). Each call finds importlib's method
// on the base of the class that defines it (PEP 573's defining class), not
// in a static: a subinterpreter has its own importlib, whose functions are
// cleared when it ends, and its site.py runs the hook too.
private var archivedCodeName: PyObjectPointer!
private var executedName: PyObjectPointer!
private var finderName: PyObjectPointer!
private var getCodeName: PyObjectPointer!
private var execModuleName: PyObjectPointer!
/// The two methods' table; the interpreter keeps pointers into it for ever.
private var loaderMethodTable: UnsafeMutablePointer<PyMethodDef>? = nil

private typealias DefiningClassFunction = @convention(c) (
    PyObjectPointer?, UnsafeMutablePointer<PyTypeObject>?, UnsafePointer<PyObjectPointer?>?, Int, PyObjectPointer?
) -> PyObjectPointer?

/// `object.name(argument)`: codeshare's own part, in finder.py.
private func callOwn(_ name: PyObjectPointer, _ object: PyObjectPointer?, _ argument: PyObjectPointer?) -> PyObjectPointer? {
    var arguments = (object, argument)   // a tuple, not an array: nothing to allocate
    return withUnsafeMutablePointer(to: &arguments) {
        $0.withMemoryRebound(to: PyObjectPointer?.self, capacity: 2) { PyObject_VectorcallMethod(name, $0, 2, nil) }
    }
}

/// `name(loader, argument)` as the base of `cls` (importlib's
/// SourceFileLoader) defines it.
private func callBase(_ name: PyObjectPointer, of cls: UnsafeMutablePointer<PyTypeObject>?,
                      _ loader: PyObjectPointer?, _ argument: PyObjectPointer?) -> PyObjectPointer? {
    guard let parent = cls?.pointee.tp_base else {
        raise(PyExc_TypeError, "the loader's class has no base class")
        return nil
    }
    guard let function = PyObject_GetAttr(UnsafeMutableRawPointer(parent).assumingMemoryBound(to: PyObject.self), name)
    else { return nil }
    defer { cs_decref(function) }
    var arguments = (loader, argument)
    return withUnsafeMutablePointer(to: &arguments) {
        $0.withMemoryRebound(to: PyObjectPointer?.self, capacity: 2) { PyObject_Vectorcall(function, $0, 2, nil) }
    }
}

/// The one positional argument of a loader method, or nil with a TypeError.
private func onlyArgument(_ args: UnsafePointer<PyObjectPointer?>?, _ count: Int, _ keywords: PyObjectPointer?,
                          _ usage: StaticString) -> PyObjectPointer? {
    guard count == 1, keywords == nil || PyTuple_Size(keywords) == 0 else {
        raise(PyExc_TypeError, usage)
        return nil
    }
    return args![0]
}

/// loader.get_code(fullname): `loader._archived_code(fullname)`, or
/// importlib's get_code if that is None.
private func loaderGetCode(_ loader: PyObjectPointer?, _ cls: UnsafeMutablePointer<PyTypeObject>?,
                           _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int, _ keywords: PyObjectPointer?) -> PyObjectPointer? {
    guard let fullname = onlyArgument(args, count, keywords, "get_code() takes a module name"),
          let code = callOwn(archivedCodeName, loader, fullname)
    else { return nil }
    guard code == cs_none() else { return code }
    cs_decref(code)
    return callBase(getCodeName, of: cls, loader, fullname)
}

/// loader.exec_module(module): importlib's exec_module, then
/// `finder._executed(loader)` unless the body raised. The finder is taken
/// first: get_code turns the loader into a plain SourceFileLoader.
private func loaderExecModule(_ loader: PyObjectPointer?, _ cls: UnsafeMutablePointer<PyTypeObject>?,
                              _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int, _ keywords: PyObjectPointer?) -> PyObjectPointer? {
    guard let module = onlyArgument(args, count, keywords, "exec_module() takes a module") else { return nil }
    // No finder once get_code has run (this method bound before it did):
    // the base's exec_module then loads as plain import does.
    let finder = PyObject_GetAttr(loader, finderName)
    if finder == nil {
        guard PyErr_ExceptionMatches(PyExc_AttributeError) != 0 else { return nil }
        PyErr_Clear()
    }
    defer { if let finder { cs_decref(finder) } }
    guard let executed = callBase(execModuleName, of: cls, loader, module) else { return nil }
    guard let finder else { return executed }
    cs_decref(executed)
    return callOwn(executedName, finder, loader)
}

/// CPython's call through a method descriptor of the two methods' kind,
/// which the two descriptors keep for a call it must refuse.
private var descriptorCall: vectorcallfunc? = nil

/// The call through the two methods' descriptors: the method, as CPython's
/// own call makes it, but not counted towards the recursion limit. The
/// base's get_code and exec_module that they call are Python functions,
/// which count once each, as importlib's do under plain import; counted
/// here too, every import nested in a module body would take one level
/// more, and a program importing near the limit would meet a
/// RecursionError plain Python does not raise. A call without a loader
/// first goes to CPython's, which raises its TypeError.
private func uncountedCall(_ method: DefiningClassFunction, _ descriptor: PyObjectPointer?,
                           _ args: UnsafePointer<PyObjectPointer?>?, _ nargsf: Int, _ keywords: PyObjectPointer?) -> PyObjectPointer? {
    let cls = cs_method_descriptor_class(descriptor)
    let count = cs_vectorcall_count(nargsf)
    guard count >= 1, let loader = args![0], PyType_IsSubtype(cs_type(loader), cls) != 0 else {
        return descriptorCall!(descriptor, args, nargsf, keywords)
    }
    return method(loader, cls, args! + 1, count - 1, keywords)
}

private func getCodeCall(_ descriptor: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ nargsf: Int,
                         _ keywords: PyObjectPointer?) -> PyObjectPointer? {
    uncountedCall(loaderGetCode, descriptor, args, nargsf, keywords)
}

private func execModuleCall(_ descriptor: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ nargsf: Int,
                            _ keywords: PyObjectPointer?) -> PyObjectPointer? {
    uncountedCall(loaderExecModule, descriptor, args, nargsf, keywords)
}

/// The two methods as descriptors of `cls`, around its base's get_code and exec_module.
private func loaderMethods(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    guard count == 1, let cls = args![0], PyType_Check(cls) != 0 else {
        raise(PyExc_TypeError, "loader_methods() takes a class")
        return nil
    }
    if loaderMethodTable == nil {
        archivedCodeName = PyUnicode_InternFromString(cString("_archived_code"))
        executedName = PyUnicode_InternFromString(cString("_executed"))
        finderName = PyUnicode_InternFromString(cString("_finder"))
        getCodeName = PyUnicode_InternFromString(cString("get_code"))
        execModuleName = PyUnicode_InternFromString(cString("exec_module"))
        guard archivedCodeName != nil, executedName != nil, finderName != nil, getCodeName != nil, execModuleName != nil else { return nil }
        let flags = METH_METHOD | METH_FASTCALL | METH_KEYWORDS
        let table = (
            PyMethodDef(ml_name: cString("get_code"), ml_meth: unsafeBitCast(loaderGetCode as DefiningClassFunction, to: PyCFunction.self),
                        ml_flags: flags, ml_doc: cString("get_code(fullname): the archived code, or the base class's")),
            PyMethodDef(ml_name: cString("exec_module"), ml_meth: unsafeBitCast(loaderExecModule as DefiningClassFunction, to: PyCFunction.self),
                        ml_flags: flags, ml_doc: cString("exec_module(module): the base class's, then the finder's _executed(loader)")))
        guard let memory = checkedMemory(for: PyMethodDef.self, count: 2) else { return PyErr_NoMemory() }
        withUnsafeBytes(of: table) { UnsafeMutableRawPointer(memory).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
        loaderMethodTable = memory
    }
    let type = UnsafeMutableRawPointer(cls).assumingMemoryBound(to: PyTypeObject.self)
    guard let getCodeMethod = PyDescr_NewMethod(type, loaderMethodTable),
          let execModuleMethod = PyDescr_NewMethod(type, loaderMethodTable! + 1) else { return nil }
    descriptorCall = cs_method_descriptor_call(getCodeMethod)
    cs_set_method_descriptor_call(getCodeMethod, getCodeCall)
    cs_set_method_descriptor_call(execModuleMethod, execModuleCall)
    guard let result = PyTuple_New(2) else {
        cs_decref(getCodeMethod)
        cs_decref(execModuleMethod)
        return nil
    }
    PyTuple_SetItem(result, 0, getCodeMethod)
    PyTuple_SetItem(result, 1, execModuleMethod)
    return result
}

// recorder.py's hooks on importlib (PathFinder.find_spec and
// SourceLoader.get_code while a dump runs) are these methods: importlib's
// function called from C, then the recorder with what it returned. As for
// the loader above, no frame of codeshare stands between importlib's while
// the function runs (a syntax error in a module the program imports shows
// as under plain Python); the recorder's exists only once it has returned.
/// The method definition every observed method shares.
private var observedMethodDefinition: UnsafeMutablePointer<PyMethodDef>? = nil

private typealias KeywordsFunction = @convention(c) (PyObjectPointer?, PyObjectPointer?, PyObjectPointer?) -> PyObjectPointer?

/// `function(*args, **kwargs)`, then `observer(result, *args, **kwargs)`;
/// returns the result, or nil if either raised.
private func callObserved(_ pair: PyObjectPointer?, _ args: PyObjectPointer?, _ kwargs: PyObjectPointer?) -> PyObjectPointer? {
    let function = PyTuple_GetItem(pair, 0), observer = PyTuple_GetItem(pair, 1)
    guard let result = PyObject_Call(function, args, kwargs) else { return nil }
    let count = PyTuple_Size(args)
    guard let arguments = PyTuple_New(count + 1) else {
        cs_decref(result)
        return nil
    }
    defer { cs_decref(arguments) }
    cs_incref(result)
    PyTuple_SetItem(arguments, 0, result)
    for index in 0..<count {
        let item = PyTuple_GetItem(args, index)!
        cs_incref(item)
        PyTuple_SetItem(arguments, index + 1, item)
    }
    // As CPython runs an audit hook: a tracer or profiler (bdb, coverage,
    // cProfile) sees the program's frames and importlib's, never the recorder's.
    let thread = PyThreadState_Get()
    PyThreadState_EnterTracing(thread)
    let observed = PyObject_Call(observer, arguments, kwargs)
    PyThreadState_LeaveTracing(thread)
    guard let observed else {
        cs_decref(result)
        return nil
    }
    cs_decref(observed)
    return result
}

/// A method (it binds as a function does) that calls callObserved with
/// (function, observer) and the arguments it is given.
private func observed(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    guard count == 2, PyCallable_Check(args![0]) != 0, PyCallable_Check(args![1]) != 0 else {
        raise(PyExc_TypeError, "observed() takes a function and an observer")
        return nil
    }
    if observedMethodDefinition == nil {
        guard let memory = checkedMemory(for: PyMethodDef.self, count: 1) else { return PyErr_NoMemory() }
        let call: KeywordsFunction = callObserved
        memory.initialize(to: PyMethodDef(
            ml_name: cString("observed"), ml_meth: unsafeBitCast(call, to: PyCFunction.self),
            ml_flags: METH_VARARGS | METH_KEYWORDS, ml_doc: cString("the function's result, seen by the observer first")))
        observedMethodDefinition = memory
    }
    guard let pair = PyTuple_New(2) else { return nil }
    defer { cs_decref(pair) }
    for index in 0..<2 {
        cs_incref(args![index]!)
        PyTuple_SetItem(pair, index, args![index])
    }
    guard let function = PyCMethod_New(observedMethodDefinition, pair, nil, nil) else { return nil }
    defer { cs_decref(function) }
    return PyInstanceMethod_New(function)
}

private func method(_ name: StaticString, _ function: FastFunction, _ doc: StaticString) -> PyMethodDef {
    PyMethodDef(ml_name: cString(name), ml_meth: unsafeBitCast(function, to: PyCFunction.self),
                ml_flags: METH_FASTCALL, ml_doc: cString(doc))
}

@_cdecl("PyInit__core")
public func PyInit__core() -> UnsafeMutablePointer<PyObject>? {
    let table = (
        method("write", write, "write(entries, manifest, together, fd) -> int: an archive of (name, code, metadata) entries, written to fd"),
        method("file_unchanged", fileUnchanged, "file_unchanged(path, size, mtime_ns, hashed=None) -> bool: the source is the one dumped"),
        method("same_items", sameItems, "same_items(a, b) -> bool: the two lists hold the same objects or equal strs, in order"),
        method("version_sum", versionSum, "version_sum(classes, modules) -> the sum of the version tags of the classes and the modules' namespaces, or None"),
        method("replacement", replacement, "replacement(classes, modules, held, files) -> (owner, name) of the first of importlib's functions replaced, or None"),
        method("loader_methods", loaderMethods, "loader_methods(cls) -> get_code and exec_module around those of cls's base"),
        method("observed", observed, "observed(function, observer) -> a method: function's result, seen by observer(result, *args) first"),
        method("in_forked_children", inForkedChildren,
               "in_forked_children(work, count) -> [work(0), then work(1) ... work(count), each run in a forked child: bytes, or None]"),
        PyMethodDef())
    // The interpreter keeps pointers into the method table for ever. A
    // tuple, not an array, which would trap when memory runs out.
    let count = MemoryLayout.size(ofValue: table) / MemoryLayout<PyMethodDef>.stride
    guard let methods = checkedMemory(for: PyMethodDef.self, count: count) else { return PyErr_NoMemory() }
    withUnsafeBytes(of: table) { UnsafeMutableRawPointer(methods).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    guard let module = cs_module_create(cString("codeshare._core"), methods) else { return nil }
    guard cs_exception_types_ready(&archiveError, &foreignArchiveError) == 0,
          PyModule_AddObjectRef(module, cString("ArchiveError"), archiveError) == 0,
          PyModule_AddObjectRef(module, cString("ForeignArchiveError"), foreignArchiveError) == 0,
          let archiveType = cs_archive_type_ready(),
          PyModule_AddObjectRef(module, cString("Archive"), archiveType) == 0 else {
        cs_decref(module)
        return nil
    }
    return module
}
