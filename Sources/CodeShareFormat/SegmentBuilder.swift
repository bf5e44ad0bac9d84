/// Builds one segment (see `SegmentDescriptor`): object images are appended
/// children first, so that the reader, walking them in order, has resolved
/// every object before any slot refers to it.
public struct SegmentBuilder {
    public private(set) var objects = ByteBuffer()
    private var objectCount = 0
    private var interns: [UInt32] = []
    /// Offset and object count where a module's run-once part begins.
    private var runOnceStart: (offset: Int, objectCount: Int)? = nil

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

    /// Objects allocated from now on form the module's run-once part (see
    /// ModuleRecord), starting at a 16-aligned offset.
    public mutating func beginRunOnce() {
        objects.align(to: 16)
        runOnceStart = (objects.count, objectCount)
    }

    /// A module's run-once part as the record describes it.
    public struct RunOncePart: Equatable {
        public var size: UInt32 = 0
        public var objectCount: UInt32 = 0
        public var checksum: UInt64 = 0
    }

    /// The bytes for placement at `fileOffset`: the segment (objects, then
    /// interns), then, 16-aligned, the run-once part if one was begun.
    public func finish(fileOffset: UInt64, root: Int = 0)
        -> (bytes: [UInt8], descriptor: SegmentDescriptor, runOnce: RunOncePart) {
        let split = runOnceStart ?? (objects.count, objectCount)
        var out = ByteBuffer()
        out.append(Array(objects.bytes[0..<split.offset]))
        out.align(to: 16)
        let objectsSize = out.count
        for offset in interns { out.append(offset) }
        let descriptor = SegmentDescriptor(
            offset: fileOffset, objectsSize: UInt32(objectsSize),
            objectCount: UInt32(split.objectCount), internCount: UInt32(interns.count),
            root: UInt32(root), checksum: Checksum.of(out.bytes))
        var runOnce = RunOncePart()
        if runOnceStart != nil {
            out.align(to: 16)
            var part = ByteBuffer()
            part.append(Array(objects.bytes[split.offset...]))
            part.align(to: 16)
            runOnce = RunOncePart(size: UInt32(part.count), objectCount: UInt32(objectCount - split.objectCount),
                                  checksum: Checksum.of(part.bytes))
            out.append(part.bytes)
        }
        return (out.bytes, descriptor, runOnce)
    }
}
