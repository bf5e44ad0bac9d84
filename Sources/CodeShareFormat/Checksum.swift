/// The checksum every archive segment and table carries: a 64-bit hash over
/// little-endian 64-bit words, four independent lanes so that it runs at
/// memory speed (a one-lane multiply chain costs ~4 cycles per word).
/// Not cryptographic: it detects corruption (flipped bits, torn or spliced
/// files), not tampering; an archive is as trusted as the code it holds.
public enum Checksum {
    private static let prime1: UInt64 = 0x9E37_79B1_85EB_CA87
    private static let prime2: UInt64 = 0xC2B2_AE3D_27D4_EB4F
    private static let prime3: UInt64 = 0x1656_67B1_9E37_79F9

    /// One multiply per word: xor, multiply by an odd constant and rotate
    /// are each invertible, so a changed word always changes its lane.
    @inline(__always)
    private static func round(_ lane: UInt64, _ word: UInt64) -> UInt64 {
        let mixed = (lane ^ word) &* prime1
        return (mixed << 31) | (mixed >> 33)
    }

    /// Hash of `count` bytes at `bytes`; any alignment, any length.
    public static func of(_ bytes: UnsafeRawPointer, count: Int, seed: UInt64 = 0) -> UInt64 {
        var a = seed ^ prime3, b = seed &+ prime1, c = seed &+ prime2, d = seed &- prime1
        var position = 0
        while position + 32 <= count {
            a = round(a, bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            b = round(b, bytes.loadUnaligned(fromByteOffset: position + 8, as: UInt64.self))
            c = round(c, bytes.loadUnaligned(fromByteOffset: position + 16, as: UInt64.self))
            d = round(d, bytes.loadUnaligned(fromByteOffset: position + 24, as: UInt64.self))
            position += 32
        }
        while position + 8 <= count {
            a = round(a, bytes.loadUnaligned(fromByteOffset: position, as: UInt64.self))
            position += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while position < count {
            tail |= UInt64(bytes.load(fromByteOffset: position, as: UInt8.self)) << shift
            shift += 8
            position += 1
        }
        var hash = round(a, tail) &* prime2 ^ round(b, UInt64(count)) &* prime3
        hash = round(hash, c) &* prime2 ^ round(d, hash) &* prime3
        hash ^= hash >> 29
        hash = hash &* prime3
        return hash ^ (hash >> 32)
    }

    public static func of(_ bytes: [UInt8], seed: UInt64 = 0) -> UInt64 {
        bytes.withUnsafeBytes { of($0.baseAddress!, count: $0.count, seed: seed) }
    }
}
