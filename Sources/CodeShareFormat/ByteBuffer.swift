/// A growable little-endian byte buffer: the writer's output, and the way
/// tests build archives by hand.
public struct ByteBuffer {
    public var bytes: [UInt8] = []

    public init() {}

    public var count: Int { bytes.count }

    public mutating func append<T: FixedWidthInteger>(_ value: T) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { bytes.append(contentsOf: $0) }
    }

    public mutating func append(_ other: [UInt8]) {
        bytes.append(contentsOf: other)
    }

    public mutating func appendZeros(_ count: Int) {
        bytes.append(contentsOf: repeatElement(0, count: count))
    }

    /// Pads with zeros to a multiple of `alignment` (a power of two).
    public mutating func align(to alignment: Int) {
        appendZeros((alignment - bytes.count & (alignment - 1)) & (alignment - 1))
    }

    public mutating func store<T: FixedWidthInteger>(_ value: T, at offset: Int) {
        var little = value.littleEndian
        withUnsafeBytes(of: &little) { raw in
            for index in 0..<raw.count { bytes[offset + index] = raw[index] }
        }
    }
}

extension UnsafeRawPointer {
    /// The little-endian integer at `offset`, whatever its alignment.
    @inline(__always)
    public func little<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        T(littleEndian: loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}

extension UnsafeMutableRawPointer {
    @inline(__always)
    public func little<T: FixedWidthInteger>(_ offset: Int, as type: T.Type) -> T {
        UnsafeRawPointer(self).little(offset, as: type)
    }
}
