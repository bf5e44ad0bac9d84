import CPythonShim

/// Memory a preparing thread reuses from part to part: an anonymous mapping
/// of plain values, grown by doubling, whose pages cost only once touched;
/// `trim` hands what a big part touched to a batch to give back, which
/// would otherwise stay resident to the end and count in the peak RSS.
/// Not malloc: a big block malloc'd and freed raises glibc's mmap
/// threshold, and the next ones then come from the thread's arena, which
/// keeps their pages.
struct ScratchMemory<Element> {
    private(set) var elements: UnsafeMutablePointer<Element>? = nil
    private(set) var capacity = 0

    private static var stride: Int { MemoryLayout<Element>.stride }
    private static var page: Int { 4096 }

    /// Room for at least `count` elements, the first `used` kept; false
    /// when out of memory.
    mutating func reserve(_ count: Int, keeping used: Int) -> Bool {
        guard count > capacity else { return true }
        // 16 KiB at least: a whole number of pages for every stride dividing it.
        var grown = max(2 * capacity, 16384 / ScratchMemory.stride)
        while grown < count { grown *= 2 }
        guard let memory = cs_map_anonymous(grown * ScratchMemory.stride) else { return false }
        let moved = memory.bindMemory(to: Element.self, capacity: grown)
        if let elements {
            moved.initialize(from: elements, count: used)
            _ = cs_unmap(elements, capacity * ScratchMemory.stride)
        }
        elements = moved
        capacity = grown
        return true
    }

    /// Adds to `batch` the pages past the first `count` elements, which
    /// read as zeros when used again once the batch is given back.
    func trim(keeping count: Int, into batch: inout DiscardBatch) {
        guard let elements else { return }
        let start = (count * ScratchMemory.stride + ScratchMemory.page - 1) & ~(ScratchMemory.page - 1)
        let end = capacity * ScratchMemory.stride
        if end > start { _ = batch.add(UnsafeMutableRawPointer(elements) + start, length: end - start) }
    }

    mutating func deallocate() {
        if let elements { _ = cs_unmap(elements, capacity * ScratchMemory.stride) }
        elements = nil
        capacity = 0
    }
}
