import XCTest
@testable import CodeShareFormat

final class ChecksumTests: XCTestCase {
    func testEveryByteAndBitMatters() {
        let bytes = (0..<1000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        let original = Checksum.of(bytes)
        for length in [0, 1, 7, 8, 31, 32, 33, 999, 1000] {
            XCTAssertEqual(Checksum.of(Array(bytes[0..<length])), Checksum.of(Array(bytes[0..<length])))
        }
        for index in stride(from: 0, to: bytes.count, by: 37) {
            for bit in 0..<8 {
                var flipped = bytes
                flipped[index] ^= UInt8(1 << bit)
                XCTAssertNotEqual(Checksum.of(flipped), original, "flip at \(index) bit \(bit)")
            }
        }
    }

    func testLengthMatters() {
        XCTAssertNotEqual(Checksum.of([0, 0, 0]), Checksum.of([0, 0, 0, 0]))
        XCTAssertNotEqual(Checksum.of([]), Checksum.of([0]))
    }
}

final class ObjectRefTests: XCTestCase {
    func testFieldsRoundTrip() {
        let ref = ObjectRef(.interned, segment: 12345, offset: 0xFFFF_FFF0)
        XCTAssertEqual(ref.tag, .interned)
        XCTAssertEqual(ref.segment, 12345)
        XCTAssertEqual(ref.offset, 0xFFFF_FFF0)
        XCTAssertEqual(ObjectRef(raw: ref.raw), ref)
        let negative = ObjectRef.singleton(.smallInt, value: -5)
        XCTAssertEqual(negative.segment, SingletonKind.smallInt.rawValue)
        XCTAssertEqual(Int32(bitPattern: negative.offset), -5)
    }

    func testUnknownTagIsNil() {
        XCTAssertNil(ObjectRef(raw: 0).tag)
        XCTAssertNil(ObjectRef(raw: 7).tag)
    }
}

private func version(_ text: String) -> BuildVersion {
    Array(text.utf8).withUnsafeBytes { BuildVersion($0) }
}

final class ArchiveHeaderTests: XCTestCase {
    let identity = InterpreterIdentity(pythonHexVersion: 0x030B07F0, pycMagic: 3495, optimizationLevel: 0,
                                       debugRanges: 1, layoutFingerprint: 42, buildVersion: version("3.11.7 (main)"))

    func header(fileSize: UInt64 = 4096) -> ArchiveHeader {
        var header = ArchiveHeader(identity: identity)
        header.fileSize = fileSize
        header.tablesOffset = 256
        header.tablesSize = 100
        return header
    }

    func decode(_ bytes: [UInt8], fileSize: UInt64 = 4096, expecting: InterpreterIdentity? = nil) -> Result<ArchiveHeader, ArchiveError> {
        bytes.withUnsafeBytes { ArchiveHeader.decode($0.baseAddress!, fileSize: fileSize, expecting: expecting ?? identity) }
    }

    func testSizeIsFixed() {
        XCTAssertEqual(header().encoded().count, ArchiveHeader.size)
    }

    func testRoundTrip() {
        XCTAssertEqual(try decode(header().encoded()).get(), header())
        var together = header()
        together.loadedTogether = true
        XCTAssertEqual(try decode(together.encoded()).get(), together)
    }

    func testRefusals() {
        var bytes = header().encoded()
        bytes[0] ^= 1
        XCTAssertEqual(decode(bytes), .failure(.badMagic))

        bytes = header().encoded()
        bytes[8] = 99
        XCTAssertEqual(decode(bytes), .failure(.schemaVersion))

        bytes = header().encoded()
        bytes[140] ^= 1
        XCTAssertEqual(decode(bytes), .failure(.headerChecksum))

        XCTAssertEqual(decode(header().encoded(), fileSize: 4095), .failure(.truncated))

        // Shorter than a header: an archive cut off, or no archive at all.
        func short(_ bytes: [UInt8]) -> ArchiveError {
            (bytes + [0]).withUnsafeBytes { ArchiveHeader.refusal(ofShort: $0.baseAddress!, count: bytes.count) }
        }
        let start = Array(header().encoded()[..<100])
        XCTAssertEqual(short([]), .empty)
        XCTAssertEqual(short(Array(start[..<5])), .truncated)
        XCTAssertEqual(short(start), .truncated)
        XCTAssertEqual(short(Array("junk\n".utf8)), .badMagic)
        var cut = start
        cut[7] ^= 1
        XCTAssertEqual(short(cut), .badMagic)

        var other = identity
        other.buildVersion = version("3.11.2 (main)")
        XCTAssertEqual(decode(header().encoded(), expecting: other), .failure(.interpreterMismatch))
        other = identity
        other.optimizationLevel = 1
        XCTAssertEqual(decode(header().encoded(), expecting: other), .failure(.optimizationMismatch))
        other = identity
        other.debugRanges = 0
        XCTAssertEqual(decode(header().encoded(), expecting: other), .failure(.debugRangesMismatch))
    }
}

final class SegmentBuilderTests: XCTestCase {
    func testLayoutAndDescriptor() {
        var builder = SegmentBuilder()
        let first = builder.allocate(size: 20)
        let second = builder.allocate(size: 24, prefix: 16)
        XCTAssertEqual(first, 0)
        XCTAssertEqual(second, 24 + 16, "8-aligned, after a 16-byte prefix")
        builder.storeRef(ObjectRef(.object, offset: UInt32(first)), at: second + 8)
        XCTAssertEqual(builder.addIntern(stringAt: first), 0)
        let (bytes, descriptor, runOnce) = builder.finish(fileOffset: 512, root: second)
        XCTAssertEqual(runOnce, SegmentBuilder.RunOncePart(), "no run-once part was begun")
        XCTAssertEqual(descriptor.objectsSize % 16, 0)
        XCTAssertEqual(descriptor.objectCount, 2)
        XCTAssertEqual(descriptor.internCount, 1)
        XCTAssertEqual(bytes.count, descriptor.length)
        XCTAssertEqual(descriptor.checksum, Checksum.of(bytes))
        XCTAssertTrue(descriptor.fits(fileSize: 512 + UInt64(bytes.count)))
        XCTAssertFalse(descriptor.fits(fileSize: 512 + UInt64(bytes.count) - 1))
        assertRoundTrip(descriptor, size: SegmentDescriptor.size, encode: { $0.encode(into: &$1) },
                        decode: SegmentDescriptor.decode)
    }

    func testRunOncePartFollowsTheSegment() {
        var builder = SegmentBuilder()
        let kept = builder.allocate(size: 20)
        XCTAssertEqual(builder.addIntern(stringAt: kept), 0)
        builder.beginRunOnce()
        let body = builder.allocate(size: 40)
        XCTAssertEqual(body, 32, "the run-once part starts 16-aligned, in the module's offset space")
        builder.storeRef(ObjectRef(.object, offset: UInt32(kept)), at: body + 16)
        let (bytes, descriptor, runOnce) = builder.finish(fileOffset: 4096, root: body)
        XCTAssertEqual(descriptor.objectsSize, 32)
        XCTAssertEqual(descriptor.objectCount, 1)
        XCTAssertEqual(runOnce.objectCount, 1)
        XCTAssertEqual(runOnce.size, 48)
        let record = ModuleRecord(segment: descriptor, runOnceSize: runOnce.size, runOnceObjectCount: runOnce.objectCount,
                                  runOnceChecksum: runOnce.checksum, nameOffset: 0, nameLength: 1,
                                  metadataOffset: 1, metadataLength: 2)
        let start = Int(record.runOnceOffset) - 4096
        XCTAssertEqual(start, 48, "after the 32 bytes of objects and the intern list, 16-aligned")
        XCTAssertEqual(bytes.count, start + Int(runOnce.size))
        XCTAssertEqual(Array(bytes[start + 16..<start + 24]), Array(withUnsafeBytes(of: ObjectRef(.object, offset: 0).raw.littleEndian) { $0 }))
        XCTAssertEqual(runOnce.checksum, Checksum.of(Array(bytes[start...])))
        XCTAssertEqual(descriptor.checksum, Checksum.of(Array(bytes[..<descriptor.length])))
        XCTAssertTrue(record.fits(fileSize: 4096 + UInt64(bytes.count)))
        XCTAssertFalse(record.fits(fileSize: 4096 + UInt64(bytes.count) - 1))
        assertRoundTrip(record, size: ModuleRecord.size, encode: { $0.encode(into: &$1) }, decode: ModuleRecord.decode)
    }

    /// `value` encodes to `size` bytes that decode to the same value.
    func assertRoundTrip<T: Equatable>(_ value: T, size: Int, encode: (T, inout ByteBuffer) -> Void,
                                       decode: (UnsafeRawPointer) -> T) {
        var encoded = ByteBuffer()
        encode(value, &encoded)
        XCTAssertEqual(encoded.count, size)
        XCTAssertEqual(encoded.bytes.withUnsafeBytes { decode($0.baseAddress!) }, value)
    }
}
