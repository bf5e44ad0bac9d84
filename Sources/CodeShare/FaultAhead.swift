import CPythonShim

/// Faults in the arena pages of the parts the read-ahead thread will
/// prepare next, while it waits for the imports to catch up. A page of
/// fresh memory can take milliseconds to fault (on a VM whose host backs
/// guest memory on first touch: a 2 MiB page once took 7.7 ms here, against
/// 0.1 ms when the host had it); faulted while the thread prepares a part,
/// that stall holds the part an import may be waiting for. Faulted in the
/// thread's idle time, it costs the imports nothing. The pages are faulted
/// without changing what they hold, so a page shared with a part another
/// thread is filling is safe. Only the read-ahead thread uses it.
struct FaultAhead {
    /// How far past the start of the next part to prepare the pages are
    /// faulted in: two huge pages. In a run that imports what the dump did
    /// they are all used soon; one that stops early holds at most this much
    /// more than it read.
    static let reach = 4 << 20
    /// What one step faults in at most before the thread looks at the
    /// imports' progress again.
    static let stepBytes = 1 << 20

    /// The first module whose pieces are not faulted in yet.
    private var nextModule = 0
    private var chunksDone = false
    /// False once the kernel refused (before Linux 5.14, or pages given back
    /// and protected meanwhile): no more steps.
    private var working = true

    /// Faults in the next pages within reach of `module` (the next module
    /// the thread prepares): first the pool chunks, which any module may
    /// need, then the pieces of modules in archive order that nobody has
    /// prepared yet (an import out of order may have run one already and
    /// given its pages back). False when there is nothing left to do.
    mutating func step(_ preparer: PartPreparer, preparing module: Int) -> Bool {
        guard working else { return false }
        if !chunksDone {
            chunksDone = true
            touch(preparer.segmentSlots, preparer.moduleCount..<preparer.partCount)
            return working
        }
        let offsets = preparer.segmentSlots.offsets
        let first = max(nextModule, module)
        var end = first
        while end < preparer.moduleCount && offsets[end] < offsets[module] + FaultAhead.reach
                && offsets[end] - offsets[first] < FaultAhead.stepBytes {
            end += 1
        }
        guard end > first else { return false }
        nextModule = end
        // One call per run of modules still idle.
        var part = first
        while part < end {
            var runEnd = part
            while runEnd < end && preparer.state(runEnd) == .idle { runEnd += 1 }
            if runEnd > part {
                touch(preparer.segmentSlots, part..<runEnd)
                populate(preparer.runOnceSlots, part..<runEnd)
            }
            part = runEnd + 1
        }
        return working
    }

    /// The segment arena's pages are written to (`cs_touch_pages`), so that
    /// a slow huge page holds up only this thread: faulted by
    /// MADV_POPULATE_WRITE, which holds the address space's lock, it held
    /// up the interpreter's `mmap` and `brk` too (sympy: 10-18 of 100
    /// rounds took 1.2x the median or more, against 5-8 written to).
    private func touch(_ slots: SegmentArena.Slots, _ parts: Range<Int>) {
        guard !parts.isEmpty, let pieces = slots.memory(parts), pieces.count > 0 else { return }
        cs_touch_pages(pieces.start, pieces.count)
    }

    /// The run-once arena's pages may have been given back and made
    /// inaccessible meanwhile (`CODESHARE_RELEASE=protect`): a write there
    /// would fault for good, where MADV_POPULATE_WRITE refuses (and the
    /// steps end).
    private mutating func populate(_ slots: SegmentArena.Slots, _ parts: Range<Int>) {
        guard working, !parts.isEmpty, let pieces = slots.memory(parts), pieces.count > 0 else { return }
        if cs_fault_in(pieces.start, pieces.count) != 0 { working = false }
    }
}
