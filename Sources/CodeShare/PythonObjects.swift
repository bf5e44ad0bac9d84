import CPythonShim
import CodeShareFormat

typealias PyObjectPointer = UnsafeMutablePointer<PyObject>

/// The reference count archived objects start with (DESIGN invariant 4):
/// far beyond what any program reaches, so archive memory is never freed.
let immortalRefcount: Int = 1 << 40

extension UnsafeMutablePointer where Pointee == PyObject {
    var raw: UnsafeMutableRawPointer { UnsafeMutableRawPointer(self) }
    var address: UInt { UInt(bitPattern: self) }
    var type: UnsafeMutablePointer<PyTypeObject> { cs_type(self) }
    /// The type word of an object the reader has not vouched for yet, nil
    /// where it is zero: a ref the file names (a root, a string to intern)
    /// may point at padding, on which `type` would trap.
    var typeWord: UnsafeMutablePointer<PyTypeObject>? { cs_type(self) }
    var size: Int { cs_size(self) }
}

/// The interpreter's type object for each archived type id.
func pythonType(_ id: TypeID) -> UnsafeMutablePointer<PyTypeObject> {
    switch id {
    case .str: return cs_str_type()
    case .bytes: return cs_bytes_type()
    case .int: return cs_int_type()
    case .float: return cs_float_type()
    case .complex: return cs_complex_type()
    case .tuple: return cs_tuple_type()
    case .code: return cs_code_type()
    }
}

extension TypeID {
    /// The archived type whose type object is `type`, if any.
    init?(pythonType type: UnsafeMutablePointer<PyTypeObject>) {
        guard let id = TypeID.allCases.first(where: { pythonType($0) == type }) else { return nil }
        self = id
    }
}

/// A static string as the C string the C API takes.
func cString(_ text: StaticString) -> UnsafePointer<CChar> {
    UnsafeRawPointer(text.utf8Start).assumingMemoryBound(to: CChar.self)
}

/// UTF-8 bytes of a str, or nil (with a Python error set).
func utf8Bytes(_ string: PyObjectPointer) -> [UInt8]? {
    var length = 0
    guard let chars = PyUnicode_AsUTF8AndSize(string, &length) else { return nil }
    return [UInt8](UnsafeRawBufferPointer(start: chars, count: length))
}

/// A new dict that `fill` gives its items, `set(key, value)` taking each
/// value's reference; nil with the error set if the dict or any value could
/// not be made: out of memory, `_core` raises, never traps.
func newDict(_ fill: (_ set: (StaticString, PyObjectPointer?) -> Void) -> Void) -> PyObjectPointer? {
    guard let dict = PyDict_New() else { return nil }
    var complete = true
    fill { key, value in
        guard let value else { complete = false; return }
        if complete && PyDict_SetItemString(dict, cString(key), value) != 0 { complete = false }
        cs_decref(value)
    }
    if complete { return dict }
    cs_decref(dict)
    return nil
}

/// A new tuple that takes the references of `items`; nil with the error set
/// if it or any item could not be made (the items' references dropped).
private func newTuple(of items: UnsafeBufferPointer<PyObjectPointer?>) -> PyObjectPointer? {
    if !items.contains(where: { $0 == nil }), let tuple = PyTuple_New(items.count) {
        for (index, item) in items.enumerated() { PyTuple_SetItem(tuple, index, item) }
        return tuple
    }
    for item in items { cs_xdecref(item) }
    return nil
}

func newTuple(_ first: PyObjectPointer?, _ second: PyObjectPointer?) -> PyObjectPointer? {
    var items = (first, second)
    return withUnsafePointer(to: &items) { $0.withMemoryRebound(to: PyObjectPointer?.self, capacity: 2) {
        newTuple(of: UnsafeBufferPointer(start: $0, count: 2))
    } }
}

func newTuple(_ first: PyObjectPointer?, _ second: PyObjectPointer?, _ third: PyObjectPointer?) -> PyObjectPointer? {
    var items = (first, second, third)
    return withUnsafePointer(to: &items) { $0.withMemoryRebound(to: PyObjectPointer?.self, capacity: 3) {
        newTuple(of: UnsafeBufferPointer(start: $0, count: 3))
    } }
}

/// A new frozenset of `items` inserted in their order, then built again from
/// its own order `rebuilds` times (ObjectRef.Tag.frozenset); nil with the
/// error set.
func newFrozenset(_ items: PyObjectPointer, rebuilds: UInt32) -> PyObjectPointer? {
    guard var set = PyFrozenSet_New(items) else { return nil }
    for _ in 0..<rebuilds {
        guard let order = PySequence_Tuple(set) else { cs_decref(set); return nil }
        let again = PyFrozenSet_New(order)
        cs_decref(order)
        cs_decref(set)
        guard let again else { return nil }
        set = again
    }
    return set
}

/// Raises `type` with static text, then `separator` and `detail` (UTF-8)
/// if there is a detail. Only the message itself is allocated, as Python
/// objects: an archive refused for want of memory must raise, not trap
/// (CheckedMemory.swift).
func raise(_ type: PyObjectPointer, _ message: StaticString, separator: StaticString = "",
           detail: UnsafeRawBufferPointer? = nil) {
    guard let detail else {
        PyErr_SetString(type, cString(message))
        return
    }
    guard let head = PyUnicode_FromStringAndSize(cString(message), message.utf8CodeUnitCount) else { return }
    defer { cs_decref(head) }
    guard let middle = PyUnicode_FromStringAndSize(cString(separator), separator.utf8CodeUnitCount) else { return }
    defer { cs_decref(middle) }
    guard let tail = PyUnicode_DecodeUTF8(detail.baseAddress?.assumingMemoryBound(to: CChar.self), detail.count,
                                          "replace") else { return }
    defer { cs_decref(tail) }
    guard let start = PyUnicode_Concat(head, middle) else { return }
    defer { cs_decref(start) }
    guard let whole = PyUnicode_Concat(start, tail) else { return }
    PyErr_SetObject(type, whole)
    cs_decref(whole)
}
