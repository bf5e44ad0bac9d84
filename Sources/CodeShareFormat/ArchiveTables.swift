/// Where one segment lies in the file and how to check it. A segment is one
/// module's private objects or one chunk of the shared pool:
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
    /// A module segment: offset of its top-level code object. A pool chunk: 0.
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

    /// Whether the segment lies inside a file of `fileSize` bytes and its
    /// root (if any) inside its objects.
    public func fits(fileSize: UInt64) -> Bool {
        objectsSize & 15 == 0 && root < max(objectsSize, 1)
            && offset <= fileSize && UInt64(length) <= fileSize - offset
    }
}

/// One module of the archive: its segment, its name and the opaque metadata
/// the Python layer recorded with it (offsets into the tables' string area).
public struct ModuleRecord: Equatable {
    public static let size = SegmentDescriptor.size + 16

    public var segment: SegmentDescriptor
    public var nameOffset: UInt32
    public var nameLength: UInt32
    public var metadataOffset: UInt32
    public var metadataLength: UInt32

    public init(segment: SegmentDescriptor, nameOffset: UInt32, nameLength: UInt32,
                metadataOffset: UInt32, metadataLength: UInt32) {
        self.segment = segment
        self.nameOffset = nameOffset
        self.nameLength = nameLength
        self.metadataOffset = metadataOffset
        self.metadataLength = metadataLength
    }

    public func encode(into out: inout ByteBuffer) {
        segment.encode(into: &out)
        out.append(nameOffset)
        out.append(nameLength)
        out.append(metadataOffset)
        out.append(metadataLength)
    }

    public static func decode(_ bytes: UnsafeRawPointer) -> ModuleRecord {
        let base = SegmentDescriptor.size
        return ModuleRecord(segment: SegmentDescriptor.decode(bytes),
                            nameOffset: bytes.little(base, as: UInt32.self),
                            nameLength: bytes.little(base + 4, as: UInt32.self),
                            metadataOffset: bytes.little(base + 8, as: UInt32.self),
                            metadataLength: bytes.little(base + 12, as: UInt32.self))
    }
}
