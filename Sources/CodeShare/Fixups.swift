import CPythonShim
import CodeShareFormat

/// What `ArchiveReader.publish` still has to do for a prepared module: the
/// slots that name one of the interpreter's objects, grouped by the object.
/// 4-byte words, one group after another:
///
///     ref (2 words, low half first)   count | referencesOnly?   [count slot offsets]
///
/// - An interned string's slots already point at the archived copy (the
///   preparer wrote it): publish interns the string and rewrites the slots
///   only if the interpreter answers with a copy of its own.
/// - A static singleton's slots already point at it (`referencesOnly`: no
///   offsets follow): publish only adds the `count` references.
/// - Other singletons and frozensets: publish makes the object and fills
///   the slots.
/// One lookup per object instead of per slot, and most slots never written
/// again: their cache lines stay where the read-ahead thread left them.
/// Slot offsets are module offsets (LoadedSegment.address).
struct Fixups {
    /// Marks a group whose slots the preparer filled with the object itself.
    static let referencesOnly: UInt32 = 1 << 31

    var words: UnsafeMutablePointer<UInt32>?
    var count: Int

    /// Each group in turn: its ref, the number of slots naming it, and their
    /// offsets (none for a references-only group). Stops at the first false.
    func forEachGroup(_ body: (ObjectRef, Int, UnsafeBufferPointer<UInt32>) -> Bool) -> Bool {
        guard let words else { return true }
        var position = 0
        while position < count {
            let ref = ObjectRef(raw: UInt64(words[position]) | UInt64(words[position + 1]) << 32)
            let header = words[position + 2]
            let references = Int(header & ~Fixups.referencesOnly)
            let listed = header & Fixups.referencesOnly != 0 ? 0 : references
            position += 3
            guard body(ref, references, UnsafeBufferPointer(start: words + position, count: listed)) else { return false }
            position += listed
        }
        return true
    }

    func deallocate() { if let words { free(words) } }
}

/// The slots a worker finds while it walks a module, reused from module to
/// module; `fixups` groups them by ref and hands the module a list of its
/// own at exact size, malloc'd since it passes from the preparing thread
/// to the publishing one. Grouping is two passes over the slots with an
/// open-addressing table from ref to group: a sort cost the interpreter,
/// when it prepares a module itself, more than the grouping saves.
struct FixupCollector {
    private struct Entry {
        var ref: UInt64
        var slot: UInt32
        /// Its group, once grouped.
        var group: UInt32
    }

    /// A group: its ref, its slot count (high bit: references only) and
    /// where its next slot goes.
    private struct Group {
        var ref: UInt64
        var count: UInt32
        var cursor: Int
    }

    private var entries = ScratchArray<Entry>()
    private var count = 0
    private var groups = ScratchArray<Group>()
    /// The table: group + 1 per bucket, 0 when empty.
    private var buckets = ScratchArray<UInt32>()

    /// Adds `slot`, which names `ref`; false when out of memory.
    mutating func append(_ ref: ObjectRef, slot: UInt32) -> Bool {
        guard entries.reserve(count + 1) else { return false }
        entries.base![count] = Entry(ref: ref.raw, slot: slot, group: 0)
        count += 1
        return true
    }

    /// The slots collected since the last `removeAll`, grouped by ref in
    /// order of first use; `referencesOnly(ref)` says which groups need no
    /// slot list. Nil when out of memory.
    mutating func fixups(referencesOnly: (ObjectRef) -> Bool) -> Fixups? {
        guard count > 0 else { return Fixups(words: nil, count: 0) }
        var bucketCount = 64
        while bucketCount < 2 * count { bucketCount *= 2 }
        guard groups.reserve(count), buckets.reserve(bucketCount) else { return nil }
        let entries = entries.base!, groups = groups.base!, buckets = buckets.base!
        buckets.initialize(repeating: 0, count: bucketCount)
        let mask = bucketCount - 1
        var groupCount = 0
        for index in 0..<count {
            let ref = entries[index].ref
            var bucket = Int(truncatingIfNeeded: (ref &* 0x9E37_79B9_7F4A_7C15) >> 40) & mask
            while true {
                let occupant = Int(buckets[bucket])
                if occupant == 0 {
                    groups[groupCount] = Group(ref: ref, count: 0, cursor: 0)
                    groupCount += 1
                    buckets[bucket] = UInt32(truncatingIfNeeded: groupCount)
                    break
                }
                if groups[occupant &- 1].ref == ref { break }
                bucket = (bucket &+ 1) & mask
            }
            let group = Int(buckets[bucket]) &- 1
            entries[index].group = UInt32(truncatingIfNeeded: group)
            groups[group].count &+= 1
        }
        var size = 0
        for group in 0..<groupCount {
            let listed = !referencesOnly(ObjectRef(raw: groups[group].ref))
            groups[group].cursor = size
            size += 3 + (listed ? Int(groups[group].count) : 0)
            if !listed { groups[group].count |= Fixups.referencesOnly }
        }
        guard let memory = malloc(size * MemoryLayout<UInt32>.stride) else { return nil }
        let words = memory.assumingMemoryBound(to: UInt32.self)
        for group in 0..<groupCount {
            let position = groups[group].cursor
            words[position] = UInt32(truncatingIfNeeded: groups[group].ref)
            words[position + 1] = UInt32(truncatingIfNeeded: groups[group].ref >> 32)
            words[position + 2] = groups[group].count
            groups[group].cursor = position + 3
        }
        for index in 0..<count {
            let group = Int(entries[index].group)
            guard groups[group].count & Fixups.referencesOnly == 0 else { continue }
            words[groups[group].cursor] = entries[index].slot
            groups[group].cursor &+= 1
        }
        return Fixups(words: words, count: size)
    }

    mutating func removeAll() { count = 0 }

    mutating func deallocate() {
        entries.deallocate()
        groups.deallocate()
        buckets.deallocate()
        count = 0
    }
}

/// Scratch memory that only grows, kept from module to module.
struct ScratchArray<Element> {
    /// The elements; not nil once `reserve` succeeded.
    private(set) var base: UnsafeMutablePointer<Element>? = nil
    private var capacity = 0

    /// Room for `needed` elements at `base`; false when out of memory.
    @inline(__always)
    mutating func reserve(_ needed: Int) -> Bool {
        needed <= capacity || grow(needed)
    }

    private mutating func grow(_ needed: Int) -> Bool {
        // Big at once: malloc maps it, grows it by remapping and the pages
        // cost only once touched, so it leaves no holes behind.
        let grown = max(1 << 15, 2 * capacity, needed)
        guard let memory = realloc(base, grown * MemoryLayout<Element>.stride) else { return false }
        base = memory.assumingMemoryBound(to: Element.self)
        capacity = grown
        return true
    }

    mutating func deallocate() {
        if let base { free(base) }
        base = nil
        capacity = 0
    }
}
