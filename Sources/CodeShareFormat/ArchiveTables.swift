/// Where one segment lies in the file and how to check it. A segment is one
/// module's private objects (those that may outlive its body; the rest is
/// its run-once part, see ModuleRecord) or one chunk of the shared pool:
///
///     [objects: objectsSize bytes, 16-aligned: objectCount live CPython object
///      images, children before parents, each starting at an 8-aligned offset
///      with its (non-zero) reference count; zero bytes between them are
///      padding or a tuple's GC header. Pointer slots hold ObjectRefs.]
///     [interns: internCount × UInt32, offsets of strings to intern once per process]
///
/// The reader finds the pointer slots by walking the objects by type, as
/// marshal does, so the file carries no relocation list. `checksum` covers
/// all of it and is checked before any byte is trusted.
public struct SegmentDescriptor: Equatable {
    public static let size = 32

    public var offset: UInt64
    public var objectsSize: UInt32
    public var objectCount: UInt32
    public var internCount: UInt32
    /// A module segment: offset of its top-level code object (in the
    /// module's offset space, see ModuleRecord). A pool chunk: 0.
    public var root: UInt32
    public var checksum: UInt64

    public init(offset: UInt64, objectsSize: UInt32, objectCount: UInt32,
                internCount: UInt32, root: UInt32, checksum: UInt64) {
        self.offset = offset
        self.objectsSize = objectsSize
        self.objectCount = objectCount
        self.internCount = internCount
        self.root = root
        self.checksum = checksum
    }

    /// Total bytes of the segment in the file.
    public var length: Int { Int(objectsSize) + 4 * Int(internCount) }

    public func encode(into out: inout ByteBuffer) {
        out.append(offset)
        out.append(objectsSize)
        out.append(objectCount)
        out.append(internCount)
        out.append(root)
        out.append(checksum)
    }

    public static func decode(_ bytes: UnsafeRawPointer) -> SegmentDescriptor {
        SegmentDescriptor(offset: bytes.little(0, as: UInt64.self),
                          objectsSize: bytes.little(8, as: UInt32.self),
                          objectCount: bytes.little(12, as: UInt32.self),
                          internCount: bytes.little(16, as: UInt32.self),
                          root: bytes.little(20, as: UInt32.self),
                          checksum: bytes.little(24, as: UInt64.self))
    }

    /// Whether the segment lies inside a file of `fileSize` bytes (a module's
    /// root is checked by its record: it may lie in the run-once part).
    public func fits(fileSize: UInt64) -> Bool {
        objectsSize & 15 == 0 && offset <= fileSize && UInt64(length) <= fileSize - offset
    }
}

/// One module of the archive: its segment, its name and the opaque metadata
/// the Python layer recorded with it (offsets into the tables' string area).
///
/// A module's objects come in two parts. The segment holds those that can
/// outlive the module's execution (function code objects and everything
/// they reach, interned strings). The run-once part, in the file right after
/// the segment (16-aligned), holds what only the module body and its class
/// bodies reach: after the body has run, nothing else can refer to them
/// unless the program kept a reference, so the reader can give their pages
/// back. Refs of the module use one offset space: [0, objectsSize) is the
/// segment, [objectsSize, objectsSize + runOnceSize) the run-once part.
public struct ModuleRecord: Equatable {
    public static let size = SegmentDescriptor.size + 32

    public var segment: SegmentDescriptor
    public var runOnceSize: UInt32
    public var runOnceObjectCount: UInt32
    public var runOnceChecksum: UInt64
    public var nameOffset: UInt32
    public var nameLength: UInt32
    public var metadataOffset: UInt32
    public var metadataLength: UInt32

    public init(segment: SegmentDescriptor, runOnceSize: UInt32, runOnceObjectCount: UInt32,
                runOnceChecksum: UInt64, nameOffset: UInt32, nameLength: UInt32,
                metadataOffset: UInt32, metadataLength: UInt32) {
        self.segment = segment
        self.runOnceSize = runOnceSize
        self.runOnceObjectCount = runOnceObjectCount
        self.runOnceChecksum = runOnceChecksum
        self.nameOffset = nameOffset
        self.nameLength = nameLength
        self.metadataOffset = metadataOffset
        self.metadataLength = metadataLength
    }

    /// Where the run-once part starts in the file.
    public var runOnceOffset: UInt64 { segment.offset + UInt64((segment.length + 15) & ~15) }

    /// Whether both parts lie inside a file of `fileSize` bytes, the root
    /// inside the module's objects and the run-once part 16-aligned.
    public func fits(fileSize: UInt64) -> Bool {
        let objects = UInt64(segment.objectsSize) + UInt64(runOnceSize)
        return segment.fits(fileSize: fileSize) && runOnceSize & 15 == 0 && UInt64(segment.root) < objects
            && runOnceOffset <= fileSize && UInt64(runOnceSize) <= fileSize - runOnceOffset
    }

    public func encode(into out: inout ByteBuffer) {
        segment.encode(into: &out)
        out.append(runOnceSize)
        out.append(runOnceObjectCount)
        out.append(runOnceChecksum)
        out.append(nameOffset)
        out.append(nameLength)
        out.append(metadataOffset)
        out.append(metadataLength)
    }

    public static func decode(_ bytes: UnsafeRawPointer) -> ModuleRecord {
        let base = SegmentDescriptor.size
        return ModuleRecord(segment: SegmentDescriptor.decode(bytes),
                            runOnceSize: bytes.little(base, as: UInt32.self),
                            runOnceObjectCount: bytes.little(base + 4, as: UInt32.self),
                            runOnceChecksum: bytes.little(base + 8, as: UInt64.self),
                            nameOffset: bytes.little(base + 16, as: UInt32.self),
                            nameLength: bytes.little(base + 20, as: UInt32.self),
                            metadataOffset: bytes.little(base + 24, as: UInt32.self),
                            metadataLength: bytes.little(base + 28, as: UInt32.self))
    }
}
