import CPythonShim
import CodeShareFormat

/// A part read, checked and relocated as far as it can be without the
/// interpreter. The slots that need the interpreter's own objects (interned
/// strings, singletons, frozensets) are listed in `deferred` for
/// `ArchiveReader.publish`, which fills them holding the GIL. A slot naming
/// a string to intern already points at the archived copy, which interning
/// usually keeps (a program's own names): publish then leaves it as it is.
/// A slot naming a pool string that an earlier module's publish interned
/// points at the interned object at once: publish only counts its reference.
struct PreparedPart {
    var segment: LoadedSegment
    /// The deferred slots grouped by the ref they hold, so that publish
    /// resolves each ref once: per group the ref's low and high halves, the
    /// number of slots, then their module offsets (LoadedSegment.address);
    /// none for a group of slots already written (`DeferredSlots.written`).
    /// 4 bytes a word, since the read-ahead thread keeps a window of parts waiting.
    var deferred: UnsafeMutablePointer<UInt32>?
    var deferredCount: Int
}

/// The stage of loading that needs no interpreter: read a part (a module's
/// segment with its run-once part, or a pool chunk), check its checksum,
/// give every object its type, point every slot that names an archived
/// object at it (the read-ahead thread also hashes the strings to intern).
/// Any thread may run it: the read-ahead thread ahead of the imports, or an
/// interpreter thread that gets there first. Plain values and raw memory
/// only, shared by copy.
///
/// Parts are numbered modules first, then chunks. Each has a state: idle,
/// claimed (being prepared), ready (`results` holds it) or taken (a module
/// whose result an interpreter thread consumed). Whoever moves a part from
/// idle to claimed prepares it into the part's arena piece; the others wait.
struct PartPreparer {
    enum State: UInt32 {
        case idle = 0, claimed, ready, taken
    }

    /// Which thread prepares: each has its own scratch list of deferred slots.
    enum Worker: Int {
        case readAhead = 0, interpreter
    }

    let file: ArchiveFile
    let moduleCount: Int
    let partCount: Int
    /// Each part's segment descriptor.
    let segments: UnsafeMutablePointer<SegmentDescriptor>
    /// Each module's record (its run-once part).
    let records: UnsafeMutablePointer<ModuleRecord>
    let segmentSlots: SegmentArena.Slots
    let runOnceSlots: SegmentArena.Slots
    let states: UnsafeMutablePointer<UInt32>
    let results: UnsafeMutablePointer<Result<PreparedPart, ArchiveError>?>
    /// Bytes read by every thread.
    let bytesRead: UnsafeMutablePointer<Int>
    /// One past the highest module the interpreter has taken: how far the
    /// imports have got, which the read-ahead thread keeps just ahead of.
    let progress: UnsafeMutablePointer<UInt32>
    /// The progress the read-ahead thread sleeps until (on `progress`), 0
    /// when it is not asleep.
    let wakeAt: UnsafeMutablePointer<UInt32>
    /// The process whose threads may hold claims: in a child forked while
    /// the read-ahead thread held one, nobody will finish it.
    let claimant: UnsafeMutablePointer<Int32>
    /// Each worker's deferred slots while it walks a part, copied out
    /// grouped and at exact size at the end: lists grown in place would
    /// leave holes in the read-ahead thread's malloc arena that the
    /// interpreter cannot reuse.
    let scratch: UnsafeMutablePointer<DeferredSlots>

    /// Takes `records` (one per module) and `segments` (each module's, then
    /// each pool chunk's), allocated from CheckedMemory, which `deallocate`
    /// frees; nil when memory runs out (they are then still the caller's).
    init?(file: ArchiveFile, records: UnsafeMutablePointer<ModuleRecord>, moduleCount: Int,
          segments: UnsafeMutablePointer<SegmentDescriptor>, partCount: Int,
          segmentSlots: SegmentArena.Slots, runOnceSlots: SegmentArena.Slots) {
        let states = checkedMemory(for: UInt32.self, count: partCount)
        let results = checkedMemory(for: Result<PreparedPart, ArchiveError>?.self, count: partCount)
        let bytesRead = checkedMemory(for: Int.self, count: 1)
        let progress = checkedMemory(for: UInt32.self, count: 1)
        let wakeAt = checkedMemory(for: UInt32.self, count: 1)
        let claimant = checkedMemory(for: Int32.self, count: 1)
        let scratch = checkedMemory(for: DeferredSlots.self, count: 2)
        guard let states, let results, let bytesRead, let progress, let wakeAt, let claimant, let scratch else {
            free(states)
            free(results)
            free(bytesRead)
            free(progress)
            free(wakeAt)
            free(claimant)
            free(scratch)
            return nil
        }
        self.file = file
        self.moduleCount = moduleCount
        self.partCount = partCount
        self.segments = segments
        self.records = records
        self.segmentSlots = segmentSlots
        self.runOnceSlots = runOnceSlots
        self.states = states
        states.initialize(repeating: State.idle.rawValue, count: max(partCount, 1))
        self.results = results
        results.initialize(repeating: nil, count: max(partCount, 1))
        self.bytesRead = bytesRead
        bytesRead.initialize(to: 0)
        self.progress = progress
        progress.initialize(to: 0)
        self.wakeAt = wakeAt
        wakeAt.initialize(to: 0)
        self.claimant = claimant
        claimant.initialize(to: cs_process_id())
        self.scratch = scratch
        scratch.initialize(repeating: DeferredSlots(), count: 2)
    }

    /// Frees the tables; no other thread may be using them.
    func deallocate() {
        for part in 0..<partCount {
            if case .success(let prepared)? = results[part], let deferred = prepared.deferred { free(deferred) }
        }
        results.deinitialize(count: max(partCount, 1))
        scratch[0].deallocate()
        scratch[1].deallocate()
        free(records)
        free(segments)
        free(states)
        free(results)
        free(bytesRead)
        free(progress)
        free(wakeAt)
        free(claimant)
        free(scratch)
    }

    func state(_ part: Int) -> State { State(rawValue: cs_load_acquire(states + part))! }

    // MARK: - Claims

    /// Prepares `part` unless another thread has claimed it (read-ahead).
    func prepareIfIdle(_ part: Int, by worker: Worker) {
        if cs_compare_exchange(states + part, State.idle.rawValue, State.claimed.rawValue) != 0 {
            finish(part, by: worker)
        }
    }

    /// The ready part, prepared now if nobody had claimed it; waits while
    /// another thread prepares it. Nil for a module already taken.
    func ready(_ part: Int, by worker: Worker) -> UnsafeMutablePointer<Result<PreparedPart, ArchiveError>?>? {
        while true {
            switch state(part) {
            case .ready:
                return results + part
            case .taken:
                return nil
            case .idle:
                prepareIfIdle(part, by: worker)
            case .claimed:
                if cs_process_id() != claimant.pointee {
                    // Forked while the read-ahead thread held the claim: it
                    // does not exist here, so its piece is ours to redo.
                    finish(part, by: worker)
                } else {
                    cs_yield()
                }
            }
        }
    }

    /// A module's prepared part, which the caller now owns: nil if another
    /// caller took it first (the caller then prepares a fresh copy).
    func take(_ module: Int) -> Result<PreparedPart, ArchiveError>? {
        advance(to: UInt32(module + 1))
        guard let result = ready(module, by: .interpreter) else { return nil }
        guard cs_compare_exchange(states + module, State.ready.rawValue, State.taken.rawValue) != 0 else { return nil }
        defer { result.pointee = nil }
        return result.pointee
    }

    /// Notes that the imports have reached `reached` modules, and wakes the
    /// read-ahead thread if it sleeps until then.
    func advance(to reached: UInt32) {
        guard reached > cs_load_ordered(progress) else { return }
        cs_store_ordered(progress, reached)
        let wake = cs_load_ordered(wakeAt)
        if wake != 0 && reached >= wake { cs_wake_waiters(progress) }
    }

    /// A ready pool chunk (chunk parts are never taken).
    func chunk(_ number: UInt32, by worker: Worker) -> Result<PreparedPart, ArchiveError> {
        let part = moduleCount + Int(number) - 1
        guard number > 0, part < partCount else { return .failure(.badReference) }
        return ready(part, by: worker)!.pointee!
    }

    private func finish(_ part: Int, by worker: Worker) {
        results[part] = prepare(part, fresh: false, by: worker)
        cs_store_release(states + part, State.ready.rawValue)
    }

    // MARK: - Preparing

    /// Reads and prepares `part`: into its arena pieces the first time,
    /// into fresh memory when `fresh` (a module read again).
    func prepare(_ part: Int, fresh: Bool, by worker: Worker) -> Result<PreparedPart, ArchiveError> {
        let descriptor = segments[part]
        guard let base = memory(descriptor.length, slot: fresh ? nil : segmentSlots.memory(part)) else {
            return .failure(.outOfMemory)
        }
        // What this call malloc'd, freed if it fails. Not a Swift array,
        // which traps when memory runs out (CheckedMemory.swift).
        let ownedBase = fresh || segmentSlots.start == nil ? base : nil
        var ownedRunOnce: UnsafeMutableRawPointer? = nil
        func fail(_ error: ArchiveError) -> Result<PreparedPart, ArchiveError> {
            free(ownedBase)
            free(ownedRunOnce)
            return .failure(error)
        }
        if let error = read(descriptor.length, at: descriptor.offset, into: base, checksum: descriptor.checksum, by: worker) {
            return fail(error)
        }
        let record: ModuleRecord? = part < moduleCount ? records[part] : nil
        let runOnceSize = Int(record?.runOnceSize ?? 0)
        var runOnceBase = base + Int(descriptor.objectsSize)
        if let record, runOnceSize > 0 {
            guard let memory = memory(runOnceSize, slot: fresh ? nil : runOnceSlots.memory(part)) else {
                return fail(.outOfMemory)
            }
            if fresh || runOnceSlots.start == nil { ownedRunOnce = memory }
            if let error = read(runOnceSize, at: record.runOnceOffset, into: memory, checksum: record.runOnceChecksum, by: worker) {
                return fail(error)
            }
            runOnceBase = memory
        }
        cs_add_relaxed(bytesRead, descriptor.length + runOnceSize)
        let internCount = Int(descriptor.internCount)
        // Every string not yet interned (zeros are nil).
        guard let interned = checkedMemory(for: PyObjectPointer?.self, count: internCount) else {
            return fail(.outOfMemory)
        }
        let segment = LoadedSegment(base: base, objectsSize: Int(descriptor.objectsSize), internCount: internCount,
                                    interned: interned, runOnceBase: runOnceBase, runOnceSize: runOnceSize)
        // A module's walk lists what it defers in its worker's scratch list; a
        // chunk's (which may run inside a module's) has nothing to defer.
        let deferred: UnsafeMutablePointer<DeferredSlots>? = record == nil ? nil : scratch + worker.rawValue
        func discard(_ error: ArchiveError) -> Result<PreparedPart, ArchiveError> {
            free(segment.interned)
            deferred?.pointee.removeAll()
            return fail(error)
        }
        for index in 0..<internCount where segment.internOffset(index) >= segment.objectsSize {
            return discard(.badReference)
        }
        // The segment first: the run-once part refers to it, never the reverse.
        var failure: ArchiveError? = nil
        let objects = ObjectImage.forEachObject(in: base, size: segment.objectsSize) { type, object, available in
            relocate(object, type, available: available, in: segment, at: object - base, reach: segment.objectsSize,
                     by: worker, deferred: deferred, failure: &failure)
        }
        if let failure { return discard(failure) }
        guard objects == Int(descriptor.objectCount) else { return discard(.badReference) }
        let runOnceObjects = ObjectImage.forEachObject(in: runOnceBase, size: runOnceSize) { type, object, available in
            relocate(object, type, available: available, in: segment, at: segment.objectsSize + (object - runOnceBase),
                     reach: segment.end, by: worker, deferred: deferred, failure: &failure)
        }
        if let failure { return discard(failure) }
        guard runOnceObjects == Int(record?.runOnceObjectCount ?? 0) else { return discard(.badReference) }
        if worker == .readAhead { cacheHashes(of: segment) }
        guard let grouped = deferred == nil ? (nil, 0) : deferred!.pointee.grouped() else { return discard(.outOfMemory) }
        deferred?.pointee.removeAll()
        return .success(PreparedPart(segment: segment, deferred: grouped.list, deferredCount: grouped.count))
    }

    /// Caches the hash of each string the segment has the interpreter
    /// intern, so that interning it finds the hash computed (CPython's own
    /// function, which needs only the hash secret). Off the interpreter's
    /// thread only: other strings keep hashing lazily, as unmarshalled ones
    /// do. An intern offset is checked to hold a str whose data lies inside
    /// the segment; anything else is left for `intern` to refuse.
    private func cacheHashes(of segment: LoadedSegment) {
        let strType = UnsafeMutableRawPointer(cs_str_type())
        for index in 0..<segment.internCount {
            let offset = segment.internOffset(index)
            guard offset + Int(CS_COMPACT_HEADER_SIZE) <= segment.objectsSize else { continue }
            let object = segment.base + offset
            guard object.load(fromByteOffset: 8, as: UnsafeMutableRawPointer.self) == strType else { continue }
            let state = object.load(fromByteOffset: Int(CS_STR_STATE), as: UInt32.self)
            let kind = Int(state >> UInt32(CS_STR_STATE_KIND_SHIFT) & 7)
            let header = Int(state & UInt32(CS_STR_STATE_ASCII) != 0 ? CS_ASCII_HEADER_SIZE : CS_COMPACT_HEADER_SIZE)
            let length = object.load(fromByteOffset: Int(CS_STR_LENGTH), as: Int.self)
            guard state & UInt32(CS_STR_STATE_COMPACT) != 0, kind == 1 || kind == 2 || kind == 4,
                  length >= 0, length <= (segment.objectsSize - offset - header) / kind
            else { continue }
            let string = object.assumingMemoryBound(to: PyObject.self)
            cs_str_set_hash(string, cs_str_hash(string))
        }
    }

    /// The part's arena piece, or malloc'd memory without one.
    private func memory(_ count: Int, slot: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        if let slot { return slot }
        var memory: UnsafeMutableRawPointer? = nil
        return posix_memalign(&memory, 16, SegmentArena.pieceSize(count)) == 0 ? memory : nil
    }

    /// Reads `count` bytes at `offset` into `base` and checks them against
    /// `checksum` before anything else looks at them.
    func read(_ count: Int, at offset: UInt64, into base: UnsafeMutableRawPointer, checksum: UInt64,
              by worker: Worker) -> ArchiveError? {
        if let error = file.read(into: base, count: count, at: offset, by: worker) { return error }
        return Checksum.of(base, count: count) == checksum ? nil : .segmentChecksum
    }

    /// Gives one object its type and every slot the
    /// object its ref names, or defers the slot to `publish`; answers the
    /// object's size, or nil (and `failure`) for a bad ref. Refs within the
    /// module must stay below `reach`: the segment's objects may not point
    /// into the run-once part, which `release` relies on. A pool chunk (no
    /// `deferred` list) holds leaves only: no slot may name another part or
    /// wait for `publish`.
    @inline(__always)
    private func relocate(_ object: UnsafeMutableRawPointer, _ type: TypeID, available: Int,
                          in segment: LoadedSegment, at offset: Int, reach: Int, by worker: Worker,
                          deferred: UnsafeMutablePointer<DeferredSlots>?, failure: inout ArchiveError?) -> Int? {
        object.storeBytes(of: UnsafeMutableRawPointer(pythonType(type)), toByteOffset: 8,
                          as: UnsafeMutableRawPointer.self)
        /// The segment `ref` points into: this part's, or a pool chunk's
        /// (prepared now if no thread has yet); nil (and `failure`) if that
        /// chunk cannot be.
        func loadedSegment(for ref: ObjectRef) -> LoadedSegment? {
            if ref.segment == 0 { return segment }
            switch chunk(ref.segment, by: worker) {
            case .success(let prepared): return prepared.segment
            case .failure(let error):
                failure = error
                return nil
            }
        }
        func postpone(_ slot: Int, _ ref: ObjectRef) -> Bool {
            if deferred!.pointee.append(UInt32(offset + slot), holding: ref) { return true }
            failure = .outOfMemory
            return false
        }
        let size = ObjectImage.walk(type, object, available: available) { slot in
            let ref = ObjectRef(raw: object.little(slot, as: UInt64.self))
            switch ref.tag {
            case .interior where ref.segment == 0 && Int(ref.offset) < reach:
                object.storeBytes(of: segment.address(Int(ref.offset)), toByteOffset: slot, as: UnsafeMutableRawPointer.self)
                return true
            case .object where deferred != nil:
                guard let target = loadedSegment(for: ref) else { return false }
                guard Int(ref.offset) < (ref.segment == 0 ? reach : target.end) else { break }
                object.storeBytes(of: target.address(Int(ref.offset)), toByteOffset: slot, as: UnsafeMutableRawPointer.self)
                return true
            case .type where deferred != nil:
                guard let id = TypeID(rawValue: ref.segment) else { break }
                object.storeBytes(of: UnsafeMutableRawPointer(pythonType(id)), toByteOffset: slot, as: UnsafeMutableRawPointer.self)
                return true
            case .interned where deferred != nil:
                guard let target = loadedSegment(for: ref) else { return false }
                guard Int(ref.offset) < target.internCount else { break }
                let archived = target.archivedString(Int(ref.offset))
                // A pool string an earlier module's publish interned: the slot
                // gets the answer now, and publish only counts the reference
                // (none for the archived copy, which never dies).
                if ref.segment != 0, let known = cs_load_acquire_object(target.interned + Int(ref.offset)) {
                    object.storeBytes(of: UnsafeMutableRawPointer(known), toByteOffset: slot, as: UnsafeMutableRawPointer.self)
                    if UnsafeMutableRawPointer(known) == archived { return true }
                    if deferred!.pointee.count(ref) { return true }
                    failure = .outOfMemory
                    return false
                }
                guard postpone(slot, ref) else { return false }
                object.storeBytes(of: archived, toByteOffset: slot, as: UnsafeMutableRawPointer.self)
                return true
            case .singleton where deferred != nil:
                return postpone(slot, ref)
            case .frozenset where deferred != nil && ref.segment <= ObjectRef.frozensetRebuildsLimit
                                  && Int(ref.offset) < reach:
                return postpone(slot, ref)
            default:
                break
            }
            if failure == nil { failure = .badReference }
            return false
        }
        return size
    }
}

/// A growing list of deferred slots (module offsets) grouped by the ref
/// they hold as they come, reused from part to part; `grouped` hands a part
/// its own list (PreparedPart.deferred), malloc'd since it passes from the
/// preparing thread to the publishing one. 8 bytes a slot and 16 a group
/// while a part is walked (a third as many groups as slots).
struct DeferredSlots {
    private struct Slot {
        var offset: UInt32
        var group: UInt32
    }

    private struct Group {
        var ref: UInt64
        var size: UInt32 = 0
        /// Where the group's next offset goes in the grouped list.
        var next: UInt32 = 0
    }

    private var slots = ScratchMemory<Slot>()
    private(set) var count = 0
    private var groups = ScratchMemory<Group>()
    private var groupCount = 0
    /// Open-addressed index from a ref to its group (+ 1; 0 is empty), at
    /// most half full.
    private var table = ScratchMemory<UInt32>()
    private var tableBits = 0
    /// A big part's pages of the three, given back in one call.
    private var discards = DiscardBatch(flushPages: .max)

    /// Slots (with their groups and table) whose memory stays touched from
    /// one part to the next: ~24 KiB.
    private static let kept = 1024

    /// Marks, in a group's size word, a group of slots already written
    /// (`count`): the list holds no offsets for it.
    static let written: UInt32 = 1 << 31

    /// Adds the slot at `offset` holding `ref`; false when out of memory.
    mutating func append(_ offset: UInt32, holding ref: ObjectRef) -> Bool {
        guard slots.reserve(count + 1, keeping: count), let group = group(ref, written: 0) else { return false }
        groups.elements![group].size += 1
        slots.elements![count] = Slot(offset: offset, group: UInt32(group))
        count += 1
        return true
    }

    /// Counts a slot that already holds the interpreter's object for `ref`
    /// (its reference is all publish adds); false when out of memory.
    mutating func count(_ ref: ObjectRef) -> Bool {
        guard let group = group(ref, written: DeferredSlots.written) else { return false }
        groups.elements![group].size += 1
        return true
    }

    /// The group of `ref`'s slots, written or not, made if new; nil when
    /// out of memory.
    private mutating func group(_ ref: ObjectRef, written: UInt32) -> Int? {
        if 2 * (groupCount + 1) > 1 << tableBits {
            guard grow() else { return nil }
        }
        let table = self.table.elements!
        let mask = (1 << tableBits) - 1
        var bucket = bucket(of: ref.raw)
        while table[bucket] != 0 {
            let group = groups.elements![Int(table[bucket]) - 1]
            if group.ref == ref.raw && group.size & DeferredSlots.written == written { break }
            bucket = (bucket + 1) & mask
        }
        if table[bucket] == 0 {
            guard groups.reserve(groupCount + 1, keeping: groupCount) else { return nil }
            groups.elements![groupCount] = Group(ref: ref.raw, size: written)
            groupCount += 1
            table[bucket] = UInt32(groupCount)
        }
        return Int(table[bucket]) - 1
    }

    private func bucket(of ref: UInt64) -> Int {
        Int(truncatingIfNeeded: (ref &* 0x9E37_79B9_7F4A_7C15) >> UInt64(64 - tableBits))
    }

    /// Doubles the table and puts every group back in it.
    private mutating func grow() -> Bool {
        let bits = max(tableBits + 1, 6)
        guard table.reserve(1 << bits, keeping: 0) else { return false }
        tableBits = bits
        let table = self.table.elements!
        table.update(repeating: 0, count: 1 << bits)
        for group in 0..<groupCount {
            var bucket = bucket(of: groups.elements![group].ref)
            while table[bucket] != 0 { bucket = (bucket + 1) & ((1 << bits) - 1) }
            table[bucket] = UInt32(group + 1)
        }
        return true
    }

    /// The slots grouped by ref, each group in the order its slots were
    /// added, and the list's length in words: (nil, 0) if there are none,
    /// nil when out of memory. Grouped through a hash table as they come: a
    /// comparison sort cost the read-ahead thread more than grouping saves
    /// publish.
    mutating func grouped() -> (list: UnsafeMutablePointer<UInt32>?, count: Int)? {
        guard groupCount > 0 else { return (nil, 0) }
        let words = 3 * groupCount + count
        guard let memory = malloc(words * MemoryLayout<UInt32>.stride) else { return nil }
        let list = memory.assumingMemoryBound(to: UInt32.self)
        let groups = self.groups.elements!
        var position = 0
        for group in 0..<groupCount {
            let written = groups[group].size & DeferredSlots.written != 0
            list[position] = UInt32(truncatingIfNeeded: groups[group].ref)
            list[position + 1] = UInt32(truncatingIfNeeded: groups[group].ref >> 32)
            list[position + 2] = groups[group].size
            groups[group].next = UInt32(position + 3)
            position += 3 + (written ? 0 : Int(groups[group].size))
        }
        // No slots at all when every group was written.
        if let slots = self.slots.elements {
            for index in 0..<count {
                let group = Int(slots[index].group)
                list[Int(groups[group].next)] = slots[index].offset
                groups[group].next += 1
            }
        }
        return (list, words)
    }

    /// Empties the list for the next part; a big part's pages go back.
    mutating func removeAll() {
        if count > DeferredSlots.kept {
            slots.trim(keeping: DeferredSlots.kept, into: &discards)
            groups.trim(keeping: DeferredSlots.kept, into: &discards)
            table.trim(keeping: 0, into: &discards)
            _ = discards.flush()
            tableBits = 0   // the next part's first slot makes a small table
        } else if let table = table.elements {
            table.update(repeating: 0, count: 1 << tableBits)
        }
        count = 0
        groupCount = 0
    }

    mutating func deallocate() {
        slots.deallocate()
        groups.deallocate()
        table.deallocate()
        count = 0
        groupCount = 0
        tableBits = 0
    }
}
