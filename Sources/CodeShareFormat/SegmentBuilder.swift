/// Builds one segment (see `SegmentDescriptor`): object images are appended
/// children first, so that the reader, walking them in order, has resolved
/// every object before any slot refers to it.
public struct SegmentBuilder {
    public private(set) var objects = ByteBuffer()
    private var objectCount = 0
    private var interns: [UInt32] = []

    public init() {}

    public var size: Int { objects.count }

    /// Room for one object image of `size` bytes, zeroed, preceded by
    /// `prefix` zero bytes (a GC header); returns the object's offset.
    public mutating func allocate(size: Int, prefix: Int = 0) -> Int {
        objects.align(to: 8)
        objects.appendZeros(prefix)
        objectCount += 1
        let offset = objects.count
        objects.appendZeros(size)
        return offset
    }

    public mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        objects.store(value, at: offset)
    }

    public mutating func store(_ raw: UnsafeRawBufferPointer, at offset: Int) {
        objects.bytes.withUnsafeMutableBytes { bytes in
            (bytes.baseAddress! + offset).copyMemory(from: raw.baseAddress!, byteCount: raw.count)
        }
    }

    /// A pointer slot: the reader replaces `ref` by the object it names.
    public mutating func storeRef(_ ref: ObjectRef, at offset: Int) {
        objects.store(ref.raw, at: offset)
    }

    /// Registers the string at `offset` for interning; its index is what
    /// `.interned` refs name.
    public mutating func addIntern(stringAt offset: Int) -> UInt32 {
        interns.append(UInt32(offset))
        return UInt32(interns.count - 1)
    }

    /// The segment's bytes and its descriptor, for placement at `fileOffset`.
    public func finish(fileOffset: UInt64, root: Int = 0) -> (bytes: [UInt8], descriptor: SegmentDescriptor) {
        var out = objects
        out.align(to: 16)
        let objectsSize = out.count
        for offset in interns { out.append(offset) }
        let descriptor = SegmentDescriptor(
            offset: fileOffset, objectsSize: UInt32(objectsSize),
            objectCount: UInt32(objectCount), internCount: UInt32(interns.count),
            root: UInt32(root), checksum: Checksum.of(out.bytes))
        return (out.bytes, descriptor)
    }
}
