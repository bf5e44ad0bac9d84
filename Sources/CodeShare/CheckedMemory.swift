import CPythonShim

/// Memory for `count` values of `T` (at least one), zeroed, or nil when
/// memory runs out; freed with `free`. Everything a served program makes
/// codeshare allocate comes from here (the module's import, opening an
/// archive, loading, releasing, the read-ahead thread): Embedded Swift's
/// `allocate(capacity:)` returns NULL when malloc fails, and the first use
/// then crashes, and its arrays and class instances trap. Out of memory, an
/// archive is refused or a module falls back to plain import instead. Only
/// the dump's writer uses arrays, in a child of its own wherever one can be
/// forked (ForkedChild.swift).
/// `zeroed: false` leaves it as malloc gives it, for memory written in
/// full before it is read (the tables: zeroing them cost each open ~0.2 M
/// instructions for boto3).
func checkedMemory<T>(for type: T.Type, count: Int, zeroed: Bool = true) -> UnsafeMutablePointer<T>? {
    let bytes = max(count, 1) * MemoryLayout<T>.stride
    return (zeroed ? calloc(1, bytes) : malloc(bytes))?.bindMemory(to: T.self, capacity: max(count, 1))
}
