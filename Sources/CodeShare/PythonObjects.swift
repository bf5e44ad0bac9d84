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

/// Raises `type` with a message made of static text and optional UTF-8 bytes.
func raise(_ type: PyObjectPointer, _ message: StaticString, detail: [UInt8] = []) {
    var text = [UInt8](UnsafeBufferPointer(start: message.utf8Start, count: message.utf8CodeUnitCount))
    text.append(contentsOf: detail)
    text.append(0)
    text.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) {
            PyErr_SetString(type, $0)
        }
    }
}
