import CPythonShim

/// Zeroed memory for `count` values of `T` (at least one), or nil when
/// memory runs out; freed with `free`. What the reader allocates once the
/// program runs comes from here: Embedded Swift's `allocate(capacity:)`
/// returns NULL when malloc fails, and the first use then crashes, and its
/// arrays trap; a module must fall back to plain import instead.
func checkedMemory<T>(for type: T.Type, count: Int) -> UnsafeMutablePointer<T>? {
    calloc(max(count, 1), MemoryLayout<T>.stride)?.bindMemory(to: T.self, capacity: max(count, 1))
}
