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

/// UTF-8 bytes of a str, or nil (with a Python error set).
func utf8Bytes(_ string: PyObjectPointer) -> [UInt8]? {
    var length = 0
    guard let chars = PyUnicode_AsUTF8AndSize(string, &length) else { return nil }
    return [UInt8](UnsafeRawBufferPointer(start: chars, count: length))
}

/// Raises `type` with static text, then `separator` and `detail` (UTF-8)
/// if there is a detail. Only the message itself is allocated, as Python
/// objects: an archive refused for want of memory must raise, not trap
/// (CheckedMemory.swift).
func raise(_ type: PyObjectPointer, _ message: StaticString, separator: StaticString = "",
           detail: UnsafeRawBufferPointer? = nil) {
    func text(_ part: StaticString) -> UnsafePointer<CChar> {
        UnsafeRawPointer(part.utf8Start).assumingMemoryBound(to: CChar.self)
    }
    guard let detail else {
        PyErr_SetString(type, text(message))
        return
    }
    guard let head = PyUnicode_FromStringAndSize(text(message), message.utf8CodeUnitCount) else { return }
    defer { cs_decref(head) }
    guard let middle = PyUnicode_FromStringAndSize(text(separator), separator.utf8CodeUnitCount) else { return }
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
