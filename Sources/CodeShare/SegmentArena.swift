import CPythonShim

/// The memory one archive's segments are read into: a single anonymous
/// mapping with a 16-aligned piece for each, in archive order, which its
/// first read fills (a later read of the same part gets malloc'd memory).
/// Nothing in it is ever unmapped (frames, functions and the
/// interned-string table may point into it, DESIGN invariant 4).
///
/// For an archive of one program's imports, which a run loads nearly all
/// of, the mapping asks for transparent huge pages beyond its first 2 MiB:
/// one fault per 2 MiB instead of one per 4 KiB page. Reading every segment
/// of boto3's archive (12.5 MB) took 3.0 ms instead of 9.3 ms (medians of
/// 40). The first 2 MiB keep small pages, so a run that loads little (or a
/// small archive) takes no more memory than it reads; collections keep
/// small pages throughout.
///
/// Plain values and raw memory: the reader's copies share it.
struct SegmentArena {
    private static let hugePage = 2 << 20
    private static let page = 4096

    private let start: UnsafeMutableRawPointer?
    private let capacity: Int
    /// Where each part's piece lies, by part.
    let slots: Slots
    /// Bytes of each page known to be unreachable (`discard`), allocated
    /// on first use.
    private let deadBytes: UnsafeMutablePointer<UnsafeMutablePointer<UInt16>?>
    /// Dead pages not yet given back: they go back 64 KiB at a time, so
    /// that at most that much stays resident (rich's peak RSS is within
    /// 5% of plain's by ~120 KiB).
    private let pending: UnsafeMutablePointer<DiscardBatch>

    /// The piece of each part: its place is fixed when the arena is made, so
    /// that any thread may read a part into it without coordination beyond
    /// the claim on the part (PartPreparer). Plain values only: the
    /// read-ahead thread holds a copy.
    struct Slots {
        let start: UnsafeMutableRawPointer?
        /// Where each piece starts, and (one past the last part) the end.
        let offsets: UnsafeMutablePointer<Int>

        /// The piece of part `index`, nil without a mapping.
        func memory(_ index: Int) -> UnsafeMutableRawPointer? { start.map { $0 + offsets[index] } }

        /// The pieces of `parts`, which lie next to each other.
        func memory(_ parts: Range<Int>) -> (start: UnsafeMutableRawPointer, count: Int)? {
            start.map { ($0 + offsets[parts.lowerBound], offsets[parts.upperBound] - offsets[parts.lowerBound]) }
        }
    }

    /// Room for one piece for each of `count` parts, part `index` taking
    /// `length(index)` bytes; nil when memory runs out.
    init?(parts count: Int, hugePages: Bool, length: (Int) -> Int) {
        let offsets = checkedMemory(for: Int.self, count: count + 1)
        let deadBytes = checkedMemory(for: UnsafeMutablePointer<UInt16>?.self, count: 1)
        let pending = checkedMemory(for: DiscardBatch.self, count: 1)
        guard let offsets, let deadBytes, let pending else {
            free(offsets)
            free(deadBytes)
            free(pending)
            return nil
        }
        deadBytes.initialize(to: nil)
        pending.initialize(to: DiscardBatch(flushPages: 16))
        self.pending = pending
        var capacity = 0
        for index in 0..<count {
            offsets[index] = capacity
            capacity += SegmentArena.pieceSize(length(index))
        }
        offsets[count] = capacity
        self.capacity = capacity
        self.deadBytes = deadBytes
        start = capacity > 0 ? SegmentArena.map(capacity, hugePages: hugePages) : nil
        slots = Slots(start: start, offsets: offsets)
    }

    /// Gives back the dead pages held, and frees the tables. The mapping
    /// stays: frames, functions and the interned-string table may point
    /// into it. Pages no part was read into cost nothing.
    func deallocate() {
        _ = pending.pointee.flush()
        free(slots.offsets)
        free(deadBytes.pointee)
        free(deadBytes)
        free(pending)
    }

    /// Whether `memory` was handed out by this arena (not malloc'd).
    func owns(_ memory: UnsafeMutableRawPointer) -> Bool {
        guard let start else { return false }
        return memory >= start && memory < start + capacity
    }

    /// Notes that `count` bytes at `memory` (inside the arena) will never be
    /// read again. Every page now wholly dead goes back to the kernel with
    /// the next batch (DiscardBatch); with `protect`, at once, and made
    /// inaccessible too. Answers the bytes given back by this call.
    func discard(_ memory: UnsafeMutableRawPointer, count: Int, protect: Bool) -> Int {
        guard let start, count > 0 else { return 0 }
        if deadBytes.pointee == nil {
            deadBytes.pointee = checkedMemory(for: UInt16.self, count: (capacity + SegmentArena.page - 1) / SegmentArena.page)
        }
        // Out of memory, nothing is given back.
        guard let deadBytes = deadBytes.pointee else { return 0 }
        var offset = memory - start
        let end = offset + count
        // The pages this range completes are consecutive: one call for all.
        var firstDead: Int? = nil, lastDead = 0
        while offset < end {
            let page = offset / SegmentArena.page
            let pageEnd = min((page + 1) * SegmentArena.page, end)
            deadBytes[page] += UInt16(pageEnd - offset)
            if Int(deadBytes[page]) == SegmentArena.page {
                if firstDead == nil { firstDead = page }
                lastDead = page
            }
            offset = pageEnd
        }
        guard let firstDead else { return 0 }
        let length = (lastDead - firstDead + 1) * SegmentArena.page
        guard protect else { return pending.pointee.add(start + firstDead * SegmentArena.page, length: length) }
        return cs_discard_pages(start + firstDead * SegmentArena.page, length, 1) == 0 ? length : 0
    }

    static func pieceSize(_ count: Int) -> Int { roundUp(max(count, 16), to: 16) }

    private static func roundUp(_ value: Int, to alignment: Int) -> Int {
        (value + alignment - 1) & ~(alignment - 1)
    }

    /// A mapping of `capacity` bytes; for huge pages it starts on a 2 MiB
    /// boundary (the kernel backs only aligned 2 MiB ranges with them).
    private static func map(_ capacity: Int, hugePages: Bool) -> UnsafeMutableRawPointer? {
        let length = roundUp(capacity, to: page)
        guard hugePages, length > 2 * hugePage else { return cs_map_anonymous(length) }
        guard let raw = cs_map_anonymous(length + hugePage) else { return nil }
        let address = UInt(bitPattern: raw)
        let aligned = UnsafeMutableRawPointer(bitPattern: (address + UInt(hugePage) - 1) & ~UInt(hugePage - 1))!
        let head = aligned - raw
        if head > 0 { _ = cs_unmap(raw, head) }
        _ = cs_unmap(aligned + length, hugePage - head)
        // Advice only: without THP the mapping simply uses small pages.
        _ = cs_advise_huge_pages(aligned + hugePage, length - hugePage)
        return aligned
    }
}
