/// What an archived pointer slot holds on disk, before the reader resolves it
/// into a live `PyObject *`. One 64-bit word:
///
///     bits 0..2    tag
///     bits 3..31   segment: 0 = the segment holding the slot, k = pool chunk k-1
///                  (for `.singleton`, the singleton kind; for `.type`, the type id;
///                  for `.frozenset`, its rebuilds)
///     bits 32..63  offset of the object in its segment, or intern index,
///                  or the singleton's value
public struct ObjectRef: Equatable {
    public enum Tag: UInt64 {
        /// The object at `offset` in `segment`, used as it is.
        case object = 1
        /// Entry `index` of `segment`'s intern list: the string there, interned
        /// once per process (the interpreter may answer with its own copy).
        case interned = 2
        /// An object the interpreter already has; see `SingletonKind`.
        case singleton = 3
        /// An `ob_type` slot: the type with this id.
        case type = 4
        /// A frozenset built at load from the archived tuple at `offset` in this
        /// segment (its layout depends on per-process string hashes), then
        /// built again from its own order as many times as `segment` says, at
        /// most `frozensetRebuildsLimit`: the compiler's steps.
        case frozenset = 5
        /// A pointer to `offset` bytes into this segment that is not an object
        /// (a 4-byte-kind string's `wstr`, which points at its own characters).
        case interior = 6
    }

    public let raw: UInt64

    public init(raw: UInt64) { self.raw = raw }

    public init(_ tag: Tag, segment: UInt32 = 0, offset: UInt32) {
        raw = UInt64(offset) << 32 | UInt64(segment) << 3 | tag.rawValue
    }

    public var tag: Tag? { Tag(rawValue: raw & 7) }
    public var segment: UInt32 { UInt32(truncatingIfNeeded: raw >> 3) & 0x1FFF_FFFF }
    public var offset: UInt32 { UInt32(truncatingIfNeeded: raw >> 32) }

    public static func singleton(_ kind: SingletonKind, value: Int32 = 0) -> ObjectRef {
        ObjectRef(.singleton, segment: kind.rawValue, offset: UInt32(bitPattern: value))
    }
    public static func type(_ id: TypeID) -> ObjectRef {
        ObjectRef(.type, segment: id.rawValue, offset: 0)
    }

    /// How many times a frozenset may be built again: the compiler builds a
    /// constant set from the source's order, again to merge its elements with
    /// the module's constants, and once more where the code object interns
    /// one of its strs.
    public static let frozensetRebuildsLimit: UInt32 = 2
}

/// Objects every interpreter already holds; archives refer to them, never copy.
public enum SingletonKind: UInt32 {
    case none = 1, `true`, `false`, ellipsis
    case emptyTuple, emptyBytes
    /// The empty str; value 1 when the original was interned.
    case emptyStr
    /// An int in -5...256; value is the int.
    case smallInt
    /// A one-character latin-1 str; value = code point | 0x100 when interned.
    case latin1Char
}

/// The types whose objects are laid out live in an archive.
public enum TypeID: UInt32, CaseIterable {
    case str = 1, bytes, int, float, complex, tuple, code
}
