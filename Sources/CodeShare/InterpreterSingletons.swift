import CPythonShim
import CodeShareFormat

/// The interpreter's singletons a preparer may point slots at from any
/// thread: None, True, False, Ellipsis, the empty tuple, bytes and str,
/// the small ints and the one-character latin-1 strs (not interned ones,
/// which publish interns). In CPython 3.11 they are static objects, so
/// their addresses never change; the table also holds a reference to each
/// for its lifetime, so a slot can never point at a freed one. Publish adds
/// the slots' references, holding the GIL.
struct InterpreterSingletons {
    private static let smallInts = 7, latin1Chars = smallInts + 262, count = latin1Chars + 256

    private let objects: UnsafeMutablePointer<PyObjectPointer>

    /// Made holding the GIL; nil when out of memory.
    static func make() -> InterpreterSingletons? {
        let objects = UnsafeMutablePointer<PyObjectPointer>.allocate(capacity: count)
        var made = 0
        func add(_ object: PyObjectPointer?) -> Bool {
            guard let object else { return false }
            objects[made] = object
            made += 1
            return true
        }
        for object in [cs_none(), cs_true(), cs_false(), cs_ellipsis()] {
            cs_incref(object)
            _ = add(object)
        }
        var complete = add(PyTuple_New(0)) && add(PyBytes_FromStringAndSize(nil, 0)) && add(PyUnicode_New(0, 0))
        for value in -5...256 where complete { complete = add(PyLong_FromLong(value)) }
        for code in Int32(0)...255 where complete { complete = add(PyUnicode_FromOrdinal(code)) }
        guard complete else {
            PyErr_Clear()
            for index in 0..<made { cs_decref(objects[index]) }
            objects.deallocate()
            return nil
        }
        return InterpreterSingletons(objects: objects)
    }

    /// The object `ref` names, if it is in the table.
    func object(_ ref: ObjectRef) -> PyObjectPointer? {
        let value = Int32(bitPattern: ref.offset)
        switch SingletonKind(rawValue: ref.segment) {
        case .none?: return objects[0]
        case .true?: return objects[1]
        case .false?: return objects[2]
        case .ellipsis?: return objects[3]
        case .emptyTuple?: return objects[4]
        case .emptyBytes?: return objects[5]
        case .emptyStr? where value == 0: return objects[6]
        case .smallInt? where value >= -5 && value <= 256:
            return objects[InterpreterSingletons.smallInts + Int(value) + 5]
        case .latin1Char? where value & ~0xFF == 0:
            return objects[InterpreterSingletons.latin1Chars + Int(value)]
        default: return nil
        }
    }

    /// Drops the table's references, holding the GIL.
    func deallocate() {
        for index in 0..<InterpreterSingletons.count { cs_decref(objects[index]) }
        objects.deallocate()
    }
}
