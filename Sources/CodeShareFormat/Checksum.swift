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
        let words = count / 8
        var index = 0
        if Int(bitPattern: bytes) & 7 == 0 {
            // Segments are read into 16-aligned memory: plain word loads.
            let aligned = bytes.assumingMemoryBound(to: UInt64.self)
            while index + 4 <= words {
                a = round(a, UInt64(littleEndian: aligned[index]))
                b = round(b, UInt64(littleEndian: aligned[index + 1]))
                c = round(c, UInt64(littleEndian: aligned[index + 2]))
                d = round(d, UInt64(littleEndian: aligned[index + 3]))
                index += 4
            }
        } else {
            while index + 4 <= words {
                a = round(a, bytes.little(8 * index, as: UInt64.self))
                b = round(b, bytes.little(8 * index + 8, as: UInt64.self))
                c = round(c, bytes.little(8 * index + 16, as: UInt64.self))
                d = round(d, bytes.little(8 * index + 24, as: UInt64.self))
                index += 4
            }
        }
        while index < words {
            a = round(a, bytes.little(8 * index, as: UInt64.self))
            index += 1
        }
        var tail: UInt64 = 0
        var position = 8 * words
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
