/// The fixed header at offset 0 of every archive. Each member says what it
/// detects; the reader refuses the archive (with that reason) when one does
/// not match the running interpreter or the file.
///
///     off  size  member             detects
///       0     8  magic              not a codeshare archive
///       8     4  schemaVersion      another codeshare archive format
///      12     4  headerSize         (same; kept for tools that skip headers)
///      16     4  pythonHexVersion   another CPython release (sys.hexversion)
///      20     4  pycMagic           another bytecode format (importlib MAGIC_NUMBER)
///      24     4  optimizationLevel  another -O level (asserts, docstrings differ)
///      28     4  debugRanges        -X no_debug_ranges (column tables stripped)
///      32     8  layoutFingerprint  another object layout (the shim's constants)
///      40    96  buildVersion       another build of the same release (sys.version)
///     136     8  createdTime        (informational: seconds since the epoch)
///     144     8  fileSize           a truncated or extended file
///     152     4  moduleCount
///     156     4  chunkCount
///     160     8  tablesOffset       module records, chunk descriptors, then names
///     168     8  tablesSize         and metadata, all covered by tablesChecksum
///     176     8  tablesChecksum     corrupted tables
///     184     4  manifestOffset     the archive's own metadata (opaque to the
///     188     4  manifestLength     format), in the tables' string area
///     192     4  loadedTogether     (how the reader should hold memory: 1 when
///                                   the archive is one program's imports, which
///                                   a run loads nearly all of; 0 for a collection)
///     196    52  reserved (zero)
///     248     8  headerChecksum     a corrupted header (of bytes 0..<248)
public struct ArchiveHeader: Equatable {
    public static let size = 256
    /// "CSARCH\r\n" (the CR LF, as in PNG, catches text-mode mangling).
    public static let magic: UInt64 = 0x0A0D_4843_5241_5343
    /// Bump on any change to what the archive's bytes mean; old archives are
    /// then refused as "schema version" and rewritten by the next dump.
    public static let schemaVersion: UInt32 = 4
    public static let buildVersionSize = 96

    public var identity: InterpreterIdentity
    public var createdTime: UInt64 = 0
    public var fileSize: UInt64 = 0
    public var moduleCount: UInt32 = 0
    public var chunkCount: UInt32 = 0
    public var tablesOffset: UInt64 = 0
    public var tablesSize: UInt64 = 0
    public var tablesChecksum: UInt64 = 0
    public var manifestOffset: UInt32 = 0
    public var manifestLength: UInt32 = 0
    public var loadedTogether = false

    public init(identity: InterpreterIdentity) { self.identity = identity }

    public func encoded() -> [UInt8] {
        var out = ByteBuffer()
        out.append(ArchiveHeader.magic)
        out.append(ArchiveHeader.schemaVersion)
        out.append(UInt32(ArchiveHeader.size))
        out.append(identity.pythonHexVersion)
        out.append(identity.pycMagic)
        out.append(identity.optimizationLevel)
        out.append(identity.debugRanges)
        out.append(identity.layoutFingerprint)
        for index in 0..<ArchiveHeader.buildVersionSize { out.append(identity.buildVersion.bytes[index]) }
        out.append(createdTime)
        out.append(fileSize)
        out.append(moduleCount)
        out.append(chunkCount)
        out.append(tablesOffset)
        out.append(tablesSize)
        out.append(tablesChecksum)
        out.append(manifestOffset)
        out.append(manifestLength)
        out.append(UInt32(loadedTogether ? 1 : 0))
        out.appendZeros(248 - out.count)
        out.append(Checksum.of(out.bytes))
        return out.bytes
    }

    /// Why a file of `count` bytes, fewer than a header's, is refused:
    /// whether its bytes begin the magic tells a cut-off archive from a file
    /// that never was one (a path to a text file is not "truncated").
    public static func refusal(ofShort bytes: UnsafeRawPointer, count: Int) -> ArchiveError {
        if count == 0 { return .empty }
        for index in 0..<min(count, 8)
        where bytes.load(fromByteOffset: index, as: UInt8.self) != UInt8(truncatingIfNeeded: magic >> (8 * UInt64(index))) {
            return .badMagic
        }
        return .truncated
    }

    /// Decodes and checks a header against the file and the running
    /// interpreter; `bytes` must hold at least `size` bytes.
    public static func decode(_ bytes: UnsafeRawPointer, fileSize: UInt64,
                              expecting expected: InterpreterIdentity) -> Result<ArchiveHeader, ArchiveError> {
        if bytes.little(0, as: UInt64.self) != magic { return .failure(.badMagic) }
        if bytes.little(8, as: UInt32.self) != schemaVersion
            || bytes.little(12, as: UInt32.self) != UInt32(size) {
            return .failure(.schemaVersion)
        }
        if Checksum.of(bytes, count: 248) != bytes.little(248, as: UInt64.self) {
            return .failure(.headerChecksum)
        }
        let found = InterpreterIdentity(
            pythonHexVersion: bytes.little(16, as: UInt32.self),
            pycMagic: bytes.little(20, as: UInt32.self),
            optimizationLevel: bytes.little(24, as: UInt32.self),
            debugRanges: bytes.little(28, as: UInt32.self),
            layoutFingerprint: bytes.little(32, as: UInt64.self),
            buildVersion: BuildVersion(UnsafeRawBufferPointer(start: bytes + 40, count: buildVersionSize)))
        if let mismatch = found.mismatch(expected) { return .failure(mismatch) }
        var header = ArchiveHeader(identity: found)
        header.createdTime = bytes.little(136, as: UInt64.self)
        header.fileSize = bytes.little(144, as: UInt64.self)
        header.moduleCount = bytes.little(152, as: UInt32.self)
        header.chunkCount = bytes.little(156, as: UInt32.self)
        header.tablesOffset = bytes.little(160, as: UInt64.self)
        header.tablesSize = bytes.little(168, as: UInt64.self)
        header.tablesChecksum = bytes.little(176, as: UInt64.self)
        header.manifestOffset = bytes.little(184, as: UInt32.self)
        header.manifestLength = bytes.little(188, as: UInt32.self)
        header.loadedTogether = bytes.little(192, as: UInt32.self) != 0
        if header.fileSize != fileSize { return .failure(.truncated) }
        if header.tablesOffset < UInt64(size) || header.tablesSize > fileSize
            || header.tablesOffset > fileSize - header.tablesSize {
            return .failure(.truncated)
        }
        return .success(header)
    }
}

/// What makes an archive valid for one interpreter build and flags only.
public struct InterpreterIdentity: Equatable {
    public var pythonHexVersion: UInt32
    public var pycMagic: UInt32
    public var optimizationLevel: UInt32
    public var debugRanges: UInt32
    public var layoutFingerprint: UInt64
    public var buildVersion: BuildVersion

    public init(pythonHexVersion: UInt32, pycMagic: UInt32, optimizationLevel: UInt32,
                debugRanges: UInt32, layoutFingerprint: UInt64, buildVersion: BuildVersion) {
        self.pythonHexVersion = pythonHexVersion
        self.pycMagic = pycMagic
        self.optimizationLevel = optimizationLevel
        self.debugRanges = debugRanges
        self.layoutFingerprint = layoutFingerprint
        self.buildVersion = buildVersion
    }

    /// The first difference that makes an archive unusable, as its reason.
    public func mismatch(_ running: InterpreterIdentity) -> ArchiveError? {
        if pythonHexVersion != running.pythonHexVersion || pycMagic != running.pycMagic
            || layoutFingerprint != running.layoutFingerprint {
            return .interpreterMismatch
        }
        if buildVersion != running.buildVersion { return .interpreterMismatch }
        if optimizationLevel != running.optimizationLevel { return .optimizationMismatch }
        if debugRanges != running.debugRanges { return .debugRangesMismatch }
        return nil
    }
}

/// sys.version as the header holds it: its first 96 bytes, zero-padded.
/// Fixed-size, so that checking an archive allocates nothing (the reader
/// opens archives when memory may be short).
public struct BuildVersion: Equatable {
    public private(set) var bytes: InlineArray<96, UInt8>

    public init(_ text: UnsafeRawBufferPointer) {
        bytes = InlineArray(repeating: 0)
        for index in 0..<min(text.count, ArchiveHeader.buildVersionSize) { bytes[index] = text[index] }
    }

    /// The bytes before the padding.
    public var count: Int {
        var count = ArchiveHeader.buildVersionSize
        while count > 0 && bytes[count - 1] == 0 { count -= 1 }
        return count
    }

    public static func == (left: BuildVersion, right: BuildVersion) -> Bool {
        for index in 0..<ArchiveHeader.buildVersionSize where left.bytes[index] != right.bytes[index] { return false }
        return true
    }
}
