import CPythonShim

/// Unused pages given back to the kernel together. Each `madvise` makes
/// the kernel flush the TLB of every other core that runs a thread of the
/// process: an interrupt there, and 7-13 µs a call here (boto3's import
/// gave back run-once pages in 177 calls, 1.3 ms of its phase, while the
/// read-ahead thread ran). One `process_madvise` for many ranges flushes
/// once: on this machine's Linux 6.18, 100 ranges took 0.1 ms in one call
/// against 1.3 ms in 100 `madvise` calls, a second thread running. Where
/// the kernel refuses the call (older kernels: no `process_madvise`, no
/// PIDFD_SELF, or no MADV_DONTNEED through it), range by range.
///
/// Plain values: it lives in memory its owner's copies share.
struct DiscardBatch {
    private static let capacity = 16
    private static let page = 4096

    /// Pages held before they go back on their own (`add`).
    private let flushPages: Int
    private var ranges = InlineArray<16, iovec>(repeating: iovec())
    private var count = 0
    private var pages = 0
    private var refused = false

    init(flushPages: Int) {
        self.flushPages = flushPages
    }

    /// Adds `length` bytes of whole pages at `start`; answers the bytes
    /// given back now (a batch, or nothing).
    mutating func add(_ start: UnsafeMutableRawPointer, length: Int) -> Int {
        var given = 0
        if count > 0, let last = ranges[count - 1].iov_base, last + ranges[count - 1].iov_len == start {
            ranges[count - 1].iov_len += length
        } else {
            if count == DiscardBatch.capacity { given = flush() }
            ranges[count] = iovec(iov_base: start, iov_len: length)
            count += 1
        }
        pages += length / DiscardBatch.page
        return pages >= flushPages ? given + flush() : given
    }

    /// Gives back every range held; answers the bytes given back.
    mutating func flush() -> Int {
        defer {
            count = 0
            pages = 0
        }
        var total = 0
        for index in 0..<count { total += ranges[index].iov_len }
        var done = 0
        if !refused && count > 0 {
            let result = ranges.span.withUnsafeBufferPointer { cs_discard_ranges($0.baseAddress, count) }
            if result == total { return total }
            refused = result < 0
            done = max(result, 0)
        }
        // What the call did not cover, one range at a time.
        var given = 0, offset = 0
        for index in 0..<count {
            let range = ranges[index]
            offset += range.iov_len
            if offset <= done {
                given += range.iov_len
            } else if cs_discard_pages(range.iov_base, range.iov_len, 0) == 0 {
                given += range.iov_len
            }
        }
        return given
    }
}
