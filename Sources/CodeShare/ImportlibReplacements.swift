import CPythonShim

/// What a program replaced of what plain import runs to search the path and
/// load a source: importlib's classes' methods, its module's functions and
/// the built-in functions it calls. finder.py asks `version_sum` at each
/// lookup and `replacement` only when the sum moved. Both look at types and
/// namespaces only, never at an attribute of the program's objects, whose
/// code plain import would not run.

/// version_sum(classes, modules): the sum of the classes' version tags and
/// those of the namespaces of `modules` ((owner, module) pairs, or
/// replacement's triples), or None if
/// a class has none. A class modified since its tag was given gets a new
/// one (an attribute looked up gives it), a dict gets one at each change,
/// and tags only grow: the sum grows whenever one of the classes, one of
/// their bases or one of the modules' namespaces is modified.
func versionSum(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    let usage: StaticString = "version_sum() takes a tuple of classes and one of (owner, module) pairs"
    guard count == 2, let classes = args![0], cs_is_tuple(classes) != 0, let modules = args![1],
          cs_is_tuple(modules) != 0 else {
        raise(PyExc_TypeError, usage)
        return nil
    }
    var sum: UInt64 = 0
    for index in 0..<PyTuple_Size(classes) {
        let cls = PyTuple_GetItem(classes, index)!
        guard PyType_Check(cls) != 0 else {
            raise(PyExc_TypeError, usage)
            return nil
        }
        if cs_type_version(cls) == 0 {
            guard let attribute = PyObject_GetAttrString(cls, cString("__init__")) else { return nil }
            cs_decref(attribute)
        }
        let version = cs_type_version(cls)
        // None when the interpreter has run out of tags: it equals no sum.
        guard version != 0 else {
            cs_incref(cs_none())
            return cs_none()
        }
        sum &+= UInt64(version)
    }
    for index in 0..<PyTuple_Size(modules) {
        guard let namespace = moduleNamespace(PyTuple_GetItem(modules, index)!) else {
            raise(PyExc_TypeError, usage)
            return nil
        }
        sum &+= cs_dict_version(namespace)
    }
    return PyLong_FromUnsignedLongLong(sum)
}

/// The namespace of the module of an (owner, module) pair or an (owner,
/// module, names) triple, or nil.
private func moduleNamespace(_ entry: PyObjectPointer) -> PyObjectPointer? {
    guard cs_is_tuple(entry) != 0, (2...3).contains(PyTuple_Size(entry)), let module = PyTuple_GetItem(entry, 1),
          cs_is_module(module) != 0 else { return nil }
    return PyModule_GetDict(module)
}

/// replacement(classes, modules, held, files): the first value, as (owner,
/// name), that is callable and not importlib's own, in the namespaces of
/// `classes` and their bases (but object), found there by the class's
/// name, and of `modules`: (owner, module) pairs, or (owner, module,
/// names) triples of which only the values of `names` are looked at (a
/// name missing counts as replaced); or None. importlib's own:
/// - where `held` (name: object) names what importlib's own holds under
///   that name (importlib's `_os`, the class of its specs), that object;
/// - a function whose code's file is one of `files` (a classmethod's or
///   staticmethod's too);
/// - a built-in function of the module whose namespace holds it, by its
///   own name (posix.stat is posix's "stat");
/// - a class or a module: once importlib is installed it calls none of its
///   classes by a module's name but those `held` names, and the modules it
///   calls through are those `held` names.
/// What else a program sets (a mark, a value) importlib does not call.
func replacement(_: PyObjectPointer?, _ args: UnsafePointer<PyObjectPointer?>?, _ count: Int) -> PyObjectPointer? {
    guard count == 4, let classes = args![0], cs_is_tuple(classes) != 0, let modules = args![1],
          cs_is_tuple(modules) != 0, let held = args![2], cs_is_dict(held) != 0, let files = args![3],
          cs_is_tuple(files) != 0 else {
        raise(PyExc_TypeError, "replacement() takes classes, (owner, module) pairs, a dict and strs")
        return nil
    }
    for index in 0..<PyTuple_Size(classes) {
        let cls = PyTuple_GetItem(classes, index)!
        guard PyType_Check(cls) != 0, let mro = cs_type_mro(cls) else { continue }
        // The last class of every MRO is object.
        for position in 0..<(PyTuple_Size(mro) - 1) {
            let base = PyTuple_GetItem(mro, position)!
            guard let namespace = cs_type_dict(base) else { continue }
            var found: PyObjectPointer? = nil
            guard firstReplaced(in: namespace, owner: nil, held: held, files: files, found: &found) else { return nil }
            if let found { return newTuple(PyType_GetName(base.raw.assumingMemoryBound(to: PyTypeObject.self)), found) }
        }
    }
    for index in 0..<PyTuple_Size(modules) {
        let entry = PyTuple_GetItem(modules, index)!
        guard let namespace = moduleNamespace(entry) else { continue }
        let module = PyTuple_GetItem(entry, 1)!
        var found: PyObjectPointer? = nil
        if PyTuple_Size(entry) == 3 {
            let names = PyTuple_GetItem(entry, 2)!
            guard cs_is_tuple(names) != 0 else { continue }
            guard firstReplaced(of: names, in: namespace, owner: module, held: held, files: files,
                                found: &found) else { return nil }
        } else {
            guard firstReplaced(in: namespace, owner: module, held: held, files: files, found: &found) else {
                return nil
            }
        }
        if let found {
            let owner = PyTuple_GetItem(entry, 0)!
            cs_incref(owner)
            return newTuple(owner, found)
        }
    }
    cs_incref(cs_none())
    return cs_none()
}

/// Sets `found` to a new reference to the name of the first value of
/// `namespace` that is not importlib's own (replacement's rules; `owner` is
/// the module whose namespace it is, nil for a class's). False with the
/// error set if a classmethod's function could not be had.
private func firstReplaced(in namespace: PyObjectPointer, owner: PyObjectPointer?, held: PyObjectPointer,
                           files: PyObjectPointer, found: inout PyObjectPointer?) -> Bool {
    var position = 0
    var key: PyObjectPointer? = nil, item: PyObjectPointer? = nil
    while PyDict_Next(namespace, &position, &key, &item) != 0 {
        guard let key, let item, cs_is_str(key) != 0 else { continue }
        var value = item
        if cs_is_method_wrapper(item) != 0 {
            guard let function = PyObject_GetAttrString(item, cString("__func__")) else { return false }
            cs_decref(function)   // the wrapper holds it
            value = function
        }
        if !isImportlibs(value, named: key, owner: owner, held: held, files: files) {
            cs_incref(key)
            found = key
            return true
        }
    }
    return true
}

/// firstReplaced(in:) for the values of `names` alone.
private func firstReplaced(of names: PyObjectPointer, in namespace: PyObjectPointer, owner: PyObjectPointer,
                           held: PyObjectPointer, files: PyObjectPointer, found: inout PyObjectPointer?) -> Bool {
    for index in 0..<PyTuple_Size(names) {
        let name = PyTuple_GetItem(names, index)!
        guard cs_is_str(name) != 0 else { continue }
        let value = PyDict_GetItemWithError(namespace, name)
        if value == nil && PyErr_Occurred() != nil { return false }
        if value == nil || !isImportlibs(value!, named: name, owner: owner, held: held, files: files) {
            cs_incref(name)
            found = name
            return true
        }
    }
    return true
}

private func isImportlibs(_ value: PyObjectPointer, named name: PyObjectPointer, owner: PyObjectPointer?,
                          held: PyObjectPointer, files: PyObjectPointer) -> Bool {
    if let own = PyDict_GetItemWithError(held, name) {
        return own == value
    }
    if cs_is_function(value) != 0 {
        let file = cs_function_filename(value)!
        return (0..<PyTuple_Size(files)).contains { index in
            let own = PyTuple_GetItem(files, index)!
            return cs_is_str(own) != 0 && PyUnicode_Compare(file, own) == 0
        }
    }
    if cs_is_builtin_function(value) != 0 {
        return owner != nil && cs_builtin_function_self(value) == owner
            && PyUnicode_CompareWithASCIIString(name, cs_builtin_function_name(value)) == 0
    }
    return cs_is_module(value) != 0 || PyType_Check(value) != 0 || PyCallable_Check(value) == 0
}
