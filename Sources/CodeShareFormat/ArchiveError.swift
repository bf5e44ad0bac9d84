/// Every reason an archive, or one module in it, is refused. The reader
/// never guesses past one of these: the caller falls back to a normal import.
public enum ArchiveError: Error, Equatable {
    case io(errno: Int32)
    case notARegularFile
    case empty
    case badMagic
    case schemaVersion
    case headerChecksum
    case interpreterMismatch
    case optimizationMismatch
    case debugRangesMismatch
    case truncated
    case replaced
    case tablesChecksum
    case undecodableIndex
    case segmentChecksum
    case badReference
    case outOfMemory

    /// A sound archive written for another configuration of the interpreter.
    /// A process tree mixes configurations (a child run with `-O` inherits
    /// CODESHARE_ARCHIVE), so such an archive is passed over silently, unlike
    /// one that is damaged or stale, which every process would refuse.
    public var isForeign: Bool {
        switch self {
        case .interpreterMismatch, .optimizationMismatch, .debugRangesMismatch: return true
        default: return false
        }
    }

    /// The one-line reason shown to users.
    public var reason: StaticString {
        switch self {
        case .io: return "cannot read the archive file"
        case .notARegularFile: return "not a regular file"
        case .empty: return "empty archive file"
        case .badMagic: return "not a codeshare archive (bad magic)"
        case .schemaVersion: return "written by another codeshare archive format (schema version)"
        case .headerChecksum: return "corrupted header (checksum mismatch)"
        case .interpreterMismatch: return "written by another Python interpreter build (interpreter mismatch)"
        case .optimizationMismatch: return "written under another -O optimization level"
        case .debugRangesMismatch: return "written with another -X no_debug_ranges setting"
        case .truncated: return "truncated or resized archive file"
        case .replaced: return "the archive file was replaced or changed since it was opened"
        case .tablesChecksum: return "corrupted module index (checksum mismatch)"
        case .undecodableIndex: return "corrupted module index (a name or metadata that does not decode)"
        case .segmentChecksum: return "corrupted module data (checksum mismatch)"
        case .badReference: return "corrupted module data (reference out of bounds)"
        case .outOfMemory: return "out of memory"
        }
    }
}
