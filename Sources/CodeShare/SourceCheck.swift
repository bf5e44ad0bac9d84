import CPythonShim

/// file_unchanged(path, size, mtime_ns, hashed=None): whether a module's
/// source is still the one dumped, as import would decide it for the .pyc
/// it read at the dump. Where that .pyc was hash-based (`hashed`: whether it
/// asks for its source to be checked, and the hash of the source dumped)
/// and import checks it (`_imp.check_hash_based_pycs`), by the hash of the
/// content, as a reproducible build's mtimes say nothing; else by the size
/// and mtime, which a .pyc of timestamps records (here to the ns), without
/// the stat_result (some twenty objects) os.stat would build.
func fileUnchanged(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    guard count == 3 || count == 4, let path = args![0], cs_is_str(path) != 0 else {
        raise(PyExc_TypeError, "file_unchanged() takes a path (str), a size and an mtime in ns (int), and the hash")
        return nil
    }
    var overflow: Int32 = 0
    let size = PyLong_AsLongLongAndOverflow(args![1], &overflow)
    let sizeOverflowed = overflow != 0
    let mtime = PyLong_AsLongLongAndOverflow(args![2], &overflow)
    if PyErr_Occurred() != nil { return nil }
    var encoded: PyObjectPointer? = nil
    guard PyUnicode_FSConverter(path, &encoded) != 0, let encoded else { return nil }
    defer { cs_decref(encoded) }
    if count == 4, let hashed = args![3], hashed != cs_none() {
        switch sourceHash(cs_bytes_data(encoded), against: hashed) {
        case .failed: return nil
        case .unchanged: return PyBool_FromLong(1)
        case .changed: return PyBool_FromLong(0)
        case .notChecked: break
        }
    }
    // No file has a size or an mtime out of range: a changed file.
    if sizeOverflowed || overflow != 0 { return PyBool_FromLong(0) }
    guard case .success(let status) = FileStatus.of(cs_bytes_data(encoded)) else { return PyBool_FromLong(0) }
    return PyBool_FromLong(status == FileStatus(size: size, mtimeNanoseconds: mtime) ? 1 : 0)
}

private enum HashCheck { case notChecked, unchanged, changed, failed }

/// The source at `path` against `hashed`, (checked: bool, hash: bytes), as
/// importlib's SourceLoader checks a hash-based .pyc: only if the .pyc asks
/// for it or `--check-hash-based-pycs always`, never under `never`; the
/// hash is `_imp.source_hash` of the whole file, keyed by the magic number.
/// `.failed` with the Python error set.
private func sourceHash(_ path: UnsafePointer<CChar>, against hashed: PyObjectPointer) -> HashCheck {
    guard cs_is_tuple(hashed) != 0, PyTuple_Size(hashed) == 2, let checked = PyTuple_GetItem(hashed, 0),
          let recorded = PyTuple_GetItem(hashed, 1) else {
        raise(PyExc_TypeError, "file_unchanged() takes the hash as (bool, bytes) or None")
        return .failed
    }
    // importlib's _imp, from sys.modules: an import would run the
    // program's __import__, if it set one. Gone from there, the source is
    // taken for changed, and import decides.
    guard let name = PyUnicode_FromString(cString("_imp")) else { return .failed }
    defer { cs_decref(name) }
    guard let imp = PyImport_GetModule(name) else { return PyErr_Occurred() != nil ? .failed : .changed }
    defer { cs_decref(imp) }
    guard let mode = PyObject_GetAttrString(imp, cString("check_hash_based_pycs")) else { return .failed }
    defer { cs_decref(mode) }
    let never = cs_is_str(mode) != 0 && PyUnicode_CompareWithASCIIString(mode, cString("never")) == 0
    let always = cs_is_str(mode) != 0 && PyUnicode_CompareWithASCIIString(mode, cString("always")) == 0
    guard !never && (checked == cs_true() || always) else { return .notChecked }
    guard let source = fileContent(path) else { return PyErr_Occurred() != nil ? .failed : .changed }
    defer { cs_decref(source) }
    guard let hash = PyObject_GetAttrString(imp, cString("source_hash")) else { return .failed }
    defer { cs_decref(hash) }
    guard let arguments = newTuple(PyLong_FromLong(Int(PyImport_GetMagicNumber())), { cs_incref(source); return source }())
    else { return .failed }
    defer { cs_decref(arguments) }
    guard let current = PyObject_Call(hash, arguments, nil) else { return .failed }
    defer { cs_decref(current) }
    guard cs_is_bytes(current) != 0, cs_is_bytes(recorded) != 0 else { return .changed }
    switch PyObject_RichCompareBool(current, recorded, Py_EQ) {
    case 1: return .unchanged
    case 0: return .changed
    default: return .failed
    }
}

/// The whole file at `path` as bytes; nil if it cannot be read (no error
/// set) or memory runs out (MemoryError set).
private func fileContent(_ path: UnsafePointer<CChar>) -> PyObjectPointer? {
    guard case .success(let status) = FileStatus.of(path), status.size >= 0,
          case .success(let file) = FileDescriptor.openReadOnly(path) else { return nil }
    defer { file.close() }
    guard let content = PyBytes_FromStringAndSize(nil, Int(status.size)) else { return nil }
    guard case .success = file.read(into: UnsafeMutableRawPointer(mutating: cs_bytes_data(content)), count: Int(status.size), at: 0)
    else {
        cs_decref(content)
        return nil
    }
    return content
}
