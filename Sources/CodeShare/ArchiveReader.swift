import CPythonShim
import CodeShareFormat

/// One segment read into the archive's arena, checked and relocated, with
/// a module's run-once part (ModuleRecord) if it has one. Segment memory is
/// never freed: frames, functions and the interned-string table may point
/// into it (DESIGN invariant 4); only run-once pages nothing can reach any
/// more go back (`release`).
struct LoadedSegment {
    let base: UnsafeMutableRawPointer
    let objectsSize: Int
    let internCount: Int
    /// Interned strings of the segment, by intern index; filled on first use.
    let interned: UnsafeMutablePointer<PyObjectPointer?>
    /// Module offsets [objectsSize, end) live here.
    let runOnceBase: UnsafeMutableRawPointer
    let runOnceSize: Int

    var end: Int { objectsSize + runOnceSize }

    func internOffset(_ index: Int) -> Int {
        Int(base.little(objectsSize + 4 * index, as: UInt32.self))
    }

    /// The segment's own copy of its string to intern `index`.
    func archivedString(_ index: Int) -> UnsafeMutableRawPointer { base + internOffset(index) }

    /// The address of module offset `offset` (< end).
    @inline(__always)
    func address(_ offset: Int) -> UnsafeMutableRawPointer {
        offset < objectsSize ? base + offset : runOnceBase + (offset - objectsSize)
    }
}

/// An open archive: the validated header and tables, the file to read
/// segments from on demand, and what this process has loaded so far.
/// Plain values and raw memory, all of it from CheckedMemory: an archive
/// may be opened, and its modules loaded, when memory is short, and a
/// Swift array or class instance would then trap (CheckedMemory.swift).
/// Module.swift keeps one copy per open archive; `close` frees it.
struct ArchiveReader {
    let file: ArchiveFile
    let header: ArchiveHeader
    /// Each module's record and each pool chunk's descriptor (the preparer's tables).
    let modules: UnsafeBufferPointer<ModuleRecord>
    let chunks: UnsafeBufferPointer<SegmentDescriptor>
    /// The tables as read; names and metadata start at `stringsStart`.
    let tables: UnsafeRawBufferPointer
    let stringsStart: Int
    private let arena: SegmentArena
    private let runOnceArena: SegmentArena
    /// The stage of loading any thread can run; shared with `readAhead`.
    private let preparer: PartPreparer
    /// Pool chunks `publish` has seen ready, by chunk number - 1: most
    /// deferred slots name a shared string.
    private let readyChunks: UnsafeMutablePointer<LoadedSegment?>
    /// Each module's segment while its run-once part may still be released.
    private let loadedModules: UnsafeMutablePointer<LoadedSegment?>
    private let roots: UnsafeMutablePointer<PyObjectPointer?>
    private let state: UnsafeMutablePointer<State>

    /// What changes as the program imports.
    private struct State {
        var readAhead: ReadAhead? = nil
        /// The first module whose `code()` starts `readAhead`, until it has.
        var readAheadFrom: Int? = nil
        /// The interpreter's descriptor outlives each `code()` call, until
        /// `closeFile()` (`open`'s `keepOpen`).
        var fileKept = false
        var counters = Counters()
    }

    struct Counters {
        var modulesLoaded = 0
        var bytesReleased = 0
    }

    /// What this process has read so far: the reader's own counters.
    var counters: Counters { state.pointee.counters }

    /// Takes `tables`, `records` and `segments` (PartPreparer.init); nil
    /// when memory runs out (all of it freed).
    private init?(file: ArchiveFile, header: ArchiveHeader, tables: UnsafeMutableRawBufferPointer, stringsStart: Int,
                  records: UnsafeMutablePointer<ModuleRecord>, segments: UnsafeMutablePointer<SegmentDescriptor>) {
        let moduleCount = Int(header.moduleCount), partCount = moduleCount + Int(header.chunkCount)
        let arena = SegmentArena(parts: partCount, hugePages: header.loadedTogether) { segments[$0].length }
        let runOnceArena = SegmentArena(parts: moduleCount, hugePages: header.loadedTogether) { Int(records[$0].runOnceSize) }
        let preparer = arena.flatMap { arena in
            runOnceArena.flatMap { runOnceArena in
                PartPreparer(file: file, records: records, moduleCount: moduleCount, segments: segments,
                             partCount: partCount, segmentSlots: arena.slots, runOnceSlots: runOnceArena.slots)
            }
        }
        let readyChunks = checkedMemory(for: LoadedSegment?.self, count: partCount - moduleCount)
        let loadedModules = checkedMemory(for: LoadedSegment?.self, count: moduleCount)
        let roots = checkedMemory(for: PyObjectPointer?.self, count: moduleCount)
        let state = checkedMemory(for: State.self, count: 1)
        guard let arena, let runOnceArena, let preparer, let readyChunks, let loadedModules, let roots, let state else {
            arena?.deallocate()
            runOnceArena?.deallocate()
            if let preparer { preparer.deallocate() } else { free(records); free(segments) }
            free(readyChunks)
            free(loadedModules)
            free(roots)
            free(state)
            free(tables.baseAddress)
            file.deallocate()
            return nil
        }
        self.file = file
        self.header = header
        modules = UnsafeBufferPointer(start: records, count: moduleCount)
        chunks = UnsafeBufferPointer(start: segments + moduleCount, count: partCount - moduleCount)
        self.tables = UnsafeRawBufferPointer(tables)
        self.stringsStart = stringsStart
        self.arena = arena
        self.runOnceArena = runOnceArena
        self.preparer = preparer
        self.readyChunks = readyChunks
        readyChunks.initialize(repeating: nil, count: max(partCount - moduleCount, 1))
        self.loadedModules = loadedModules
        loadedModules.initialize(repeating: nil, count: max(moduleCount, 1))
        self.roots = roots
        roots.initialize(repeating: nil, count: max(moduleCount, 1))
        self.state = state
        state.initialize(to: State())
    }

    /// Stops the read-ahead thread and frees the tables; the segments'
    /// memory stays (LoadedSegment). No copy may be used afterwards.
    /// As the interpreter exits, a thread still at work is left to finish
    /// its part with the tables it reads, which stay: a short process
    /// (a child that inherited CODESHARE_ARCHIVE and imports little) would
    /// otherwise wait at exit for a part nobody will use.
    func close() {
        if _Py_IsFinalizing() != 0, let readAhead = state.pointee.readAhead, readAhead.leave() { return }
        state.pointee.readAhead?.stop()
        preparer.deallocate()
        arena.deallocate()
        runOnceArena.deallocate()
        readyChunks.deinitialize(count: max(chunks.count, 1))
        free(readyChunks)
        loadedModules.deinitialize(count: max(modules.count, 1))
        free(loadedModules)
        free(roots)
        state.deinitialize(count: 1)
        free(state)
        free(UnsafeMutableRawPointer(mutating: tables.baseAddress))
        file.deallocate()
    }

    /// Has every module past the first `after` (those the interpreter
    /// imports before the program) prepared in archive order on another
    /// thread, for an archive of one program's imports, big enough to gain
    /// from it, on a machine with a core to spare; answers whether it will.
    /// The thread starts `now`, while the interpreter is still starting up,
    /// or else at the first `code()` of one of those modules: a process
    /// that imports none of them starts no thread and holds no file open.
    func startReadingAhead(after: Int, now: Bool) -> Bool {
        let bytes = modules.reduce(0) { $0 + $1.segment.length + Int($1.runOnceSize) } + chunks.reduce(0) { $0 + $1.length }
        guard state.pointee.readAhead == nil, state.pointee.readAheadFrom == nil, after < modules.count,
              header.loadedTogether, bytes >= ReadAhead.minimumBytes, cs_usable_cpus() > 1
        else { return false }
        guard now else {
            state.pointee.readAheadFrom = after
            return true
        }
        state.pointee.readAhead = ReadAhead.start(preparer, after: after)
        return state.pointee.readAhead != nil
    }

    /// Bytes read by every thread so far, and the pool chunks among them.
    var bytesRead: Int { cs_load_relaxed(preparer.bytesRead) }
    var chunksLoaded: Int {
        var loaded = 0
        for part in modules.count..<preparer.partCount {
            if preparer.state(part) == .ready, case .success? = preparer.results[part] { loaded += 1 }
        }
        return loaded
    }

    /// Opens and validates an archive for the running interpreter: header,
    /// then the tables' checksum and bounds. No module is read yet, and the
    /// file is closed again (ArchiveFile), unless `keepOpen`: then it stays
    /// open for the `code()` calls that follow, until `closeFile()`. The
    /// hook reads its own two modules right after opening: one open instead
    /// of three saves six system calls (~0.01 ms) of every served start.
    static func open(_ path: UnsafePointer<CChar>, keepOpen: Bool) -> Result<ArchiveReader, ArchiveError> {
        let file: FileDescriptor
        switch FileDescriptor.openReadOnly(path) {
        case .success(let opened): file = opened
        case .failure(let error): return .failure(.io(errno: error.code))
        }
        let opened: Result<ArchiveReader, ArchiveError>
        switch ArchiveFile.Identity.of(file) {
        case .success(let identity) where !identity.regularFile: opened = .failure(.notARegularFile)
        case .success(let identity): opened = validate(file, at: path, identity: identity)
        case .failure(let error): opened = .failure(.io(errno: error.code))
        }
        if keepOpen, case .success(let reader) = opened {
            reader.file.adopt(file)
            reader.state.pointee.fileKept = true
        } else {
            file.close()
        }
        return opened
    }

    /// Closes the file `open` kept open; each `code()` call then opens it
    /// for its own reads.
    func closeFile() {
        state.pointee.fileKept = false
        file.close(for: .interpreter)
    }

    /// Ends a call's reads: the file is closed unless kept open.
    private func endReads() {
        if !state.pointee.fileKept { file.close(for: .interpreter) }
    }

    private static func validate(_ file: FileDescriptor, at path: UnsafePointer<CChar>,
                                 identity: ArchiveFile.Identity) -> Result<ArchiveReader, ArchiveError> {
        let fileSize = identity.size
        let decoded = withUnsafeTemporaryAllocation(byteCount: ArchiveHeader.size, alignment: 8) { bytes in
            let count = Int(min(fileSize, UInt64(ArchiveHeader.size)))
            if count > 0, let error = read(file, into: bytes.baseAddress!, count: count, at: 0) {
                return Result<ArchiveHeader, ArchiveError>.failure(error)
            }
            if count < ArchiveHeader.size {
                return .failure(ArchiveHeader.refusal(ofShort: bytes.baseAddress!, count: count))
            }
            return ArchiveHeader.decode(bytes.baseAddress!, fileSize: fileSize, expecting: .running())
        }
        let header: ArchiveHeader
        switch decoded {
        case .success(let value): header = value
        case .failure(let error): return .failure(error)
        }
        let moduleCount = Int(header.moduleCount), chunkCount = Int(header.chunkCount)
        let fixedSize = moduleCount * ModuleRecord.size + chunkCount * SegmentDescriptor.size
        if fixedSize > Int(header.tablesSize) { return .failure(.badReference) }
        let tablesSize = Int(header.tablesSize)
        let tables = checkedMemory(for: UInt8.self, count: tablesSize, zeroed: false)
        let records = checkedMemory(for: ModuleRecord.self, count: moduleCount, zeroed: false)
        let segments = checkedMemory(for: SegmentDescriptor.self, count: moduleCount + chunkCount, zeroed: false)
        guard let tables, let records, let segments else {
            free(tables)
            free(records)
            free(segments)
            return .failure(.outOfMemory)
        }
        func fail(_ error: ArchiveError) -> Result<ArchiveReader, ArchiveError> {
            free(tables)
            free(records)
            free(segments)
            return .failure(error)
        }
        if let error = read(file, into: tables, count: tablesSize, at: header.tablesOffset) { return fail(error) }
        if Checksum.of(tables, count: tablesSize) != header.tablesChecksum { return fail(.tablesChecksum) }
        let stringsSize = tablesSize - fixedSize
        for index in 0..<moduleCount {
            let record = ModuleRecord.decode(tables + index * ModuleRecord.size)
            guard record.fits(fileSize: fileSize), record.segment.objectsSize + record.runOnceSize > 0,
                  Int(record.nameOffset) + Int(record.nameLength) <= stringsSize,
                  Int(record.metadataOffset) + Int(record.metadataLength) <= stringsSize
            else { return fail(.badReference) }
            (records + index).initialize(to: record)
            (segments + index).initialize(to: record.segment)
        }
        for index in 0..<chunkCount {
            let chunk = SegmentDescriptor.decode(tables + moduleCount * ModuleRecord.size + index * SegmentDescriptor.size)
            guard chunk.fits(fileSize: fileSize) else { return fail(.badReference) }
            (segments + moduleCount + index).initialize(to: chunk)
        }
        if Int(header.manifestOffset) + Int(header.manifestLength) > stringsSize { return fail(.badReference) }
        guard let archiveFile = ArchiveFile(path: path, identity: identity) else { return fail(.outOfMemory) }
        guard let reader = ArchiveReader(file: archiveFile, header: header,
                                         tables: UnsafeMutableRawBufferPointer(start: tables, count: tablesSize),
                                         stringsStart: fixedSize, records: records, segments: segments)
        else { return .failure(.outOfMemory) }
        return .success(reader)
    }

    private static func read(_ file: FileDescriptor, into bytes: UnsafeMutableRawPointer, count: Int,
                             at offset: UInt64) -> ArchiveError? {
        if case .failure(let failure) = file.read(into: bytes, count: count, at: offset) { return ArchiveError(failure) }
        return nil
    }

    // MARK: - Loading

    /// The top-level code object of module `index`, materialized on first
    /// call: its segment and the pool chunks it refers to, nothing else.
    func code(module index: Int) -> Result<PyObjectPointer, ArchiveError> {
        if let root = roots[index] { return .success(root) }
        if let from = state.pointee.readAheadFrom, index >= from {
            state.pointee.readAheadFrom = nil
            state.pointee.readAhead = ReadAhead.start(preparer, after: from)
        }
        // The file stays open for the reads of this call only (ArchiveFile).
        defer { endReads() }
        let record = modules[index]
        switch publish(preparer.take(index) ?? preparer.prepare(index, fresh: true, by: .interpreter)) {
        case .failure(let error):
            return .failure(error)
        case .success(let segment):
            let root = segment.address(Int(record.segment.root)).assumingMemoryBound(to: PyObject.self)
            if root.typeWord != cs_code_type() { return .failure(.badReference) }
            // Another thread may have finished first (frozenset construction
            // can run the GC, and with it other threads); keep one answer.
            if let winner = roots[index] { return .success(winner) }
            roots[index] = root
            loadedModules[index] = segment
            state.pointee.counters.modulesLoaded += 1
            return .success(root)
        }
    }

    /// Gives back the pages of module `index`'s run-once part that nothing can
    /// reach any more; the loader calls it once the module body has run. A
    /// run-once object is still reachable if the program holds a reference
    /// to it (its count is not the archived one), a weak reference (code
    /// objects), the interned-string table (a string interned since; the
    /// table holds uncounted references), or if a reachable run-once object
    /// points at it; nothing outside the part can point into it (`relocate`
    /// enforces that). Answers the bytes this call gave back: dead pages go
    /// back in batches (SegmentArena.discard). If the top-level code
    /// object went too, the next `code()` reads the module again. `protect`:
    /// the pages go back at once, and fault on any later access instead of
    /// reading as zeros.
    func release(module index: Int, protect: Bool) -> Int {
        struct RunOnceObject {
            let start: Int, size: Int, type: TypeID
            var live: Bool
        }
        guard let segment = loadedModules[index] else { return 0 }
        loadedModules[index] = nil
        let base = segment.runOnceBase
        guard segment.runOnceSize > 0, runOnceArena.owns(base) else { return 0 }
        // The count was checked at load. Out of memory, everything is kept.
        let count = Int(modules[index].runOnceObjectCount)
        guard count > 0, let objects = checkedMemory(for: RunOnceObject.self, count: count) else { return 0 }
        defer { free(objects) }
        var listed = 0
        let walked = ObjectImage.forEachObject(in: base, size: segment.runOnceSize, inUse: true) { type, object, available in
            guard listed < count,
                  let size = ObjectImage.walk(type, object, available: available, slot: { _ in true }) else { return nil }
            let live = object.load(as: Int.self) != immortalRefcount
                || (type == .code && object.load(fromByteOffset: Int(CS_CODE_WEAKREFLIST), as: UInt.self) != 0)
                || (type == .str && cs_str_is_interned(object.assumingMemoryBound(to: PyObject.self)) != 0)
            (objects + listed).initialize(to: RunOnceObject(start: object - base, size: size, type: type, live: live))
            listed += 1
            return size
        }
        // The walk was checked at load; if it no longer covers the part, keep everything.
        guard walked == count else { return 0 }
        // Children come before parents: one backward pass carries
        // reachability from each live object to what it points at.
        let lower = UInt(bitPattern: base), upper = lower + UInt(segment.runOnceSize)
        for position in stride(from: count - 1, through: 0, by: -1) where objects[position].live {
            let object = base + objects[position].start
            _ = ObjectImage.walk(objects[position].type, object, available: segment.runOnceSize - objects[position].start) { slot in
                let target = object.load(fromByteOffset: slot, as: UInt.self)
                guard target >= lower && target < upper else { return true }
                // The object holding `target`: the last one starting at or before it.
                var low = 0, high = position
                while low < high {
                    let middle = (low + high + 1) / 2
                    if objects[middle].start <= Int(target - lower) { low = middle } else { high = middle - 1 }
                }
                objects[low].live = true
                return true
            }
        }
        // Everything outside the live objects (with a tuple's GC header) is dead.
        var released = 0, deadFrom = 0
        for object in UnsafeBufferPointer(start: objects, count: count) where object.live {
            let start = object.start - (object.type == .tuple ? Int(CS_GC_HEAD_SIZE) : 0)
            if start > deadFrom { released += runOnceArena.discard(base + deadFrom, count: start - deadFrom, protect: protect) }
            deadFrom = max(deadFrom, object.start + object.size)
        }
        if segment.runOnceSize > deadFrom {
            released += runOnceArena.discard(base + deadFrom, count: segment.runOnceSize - deadFrom, protect: protect)
        }
        let root = Int(modules[index].segment.root) - segment.objectsSize
        if root >= 0, UnsafeBufferPointer(start: objects, count: count).contains(where: { $0.start == root && !$0.live }) {
            roots[index] = nil
        }
        state.pointee.counters.bytesReleased += released
        return released
    }

    /// Fills the slots a prepared part left for the interpreter's objects
    /// (holding the GIL), a group of slots holding the same ref at a time;
    /// the part is then the caller's.
    private func publish(_ prepared: Result<PreparedPart, ArchiveError>) -> Result<LoadedSegment, ArchiveError> {
        let part: PreparedPart
        switch prepared {
        case .success(let value): part = value
        case .failure(let error): return .failure(error)
        }
        defer { if let deferred = part.deferred { free(deferred) } }
        // Fetched together, not one line at a time as the slots and the body
        // touch them: phase 0.98-1.01x of without, median 0.99x (19 paired
        // sets of 21-41 rounds, six workloads; 16 of them under 1).
        cs_prefetch_for_write(part.segment.base, part.segment.objectsSize)
        cs_prefetch_for_write(part.segment.runOnceBase, part.segment.runOnceSize)
        var failure: ArchiveError? = nil
        var position = 0
        while position < part.deferredCount {
            let group = part.deferred! + position
            let ref = ObjectRef(raw: UInt64(group[0]) | UInt64(group[1]) << 32)
            // A written group lists no slots: the preparer pointed them at the
            // interpreter's copy of a pool string; their references are left.
            let isWritten = group[2] & DeferredSlots.written != 0
            let written = isWritten ? Int(group[2] & ~DeferredSlots.written) : 0
            let slots = UnsafeBufferPointer(start: group + 3, count: isWritten ? 0 : Int(group[2]))
            position += 3 + slots.count
            guard fill(slots, written: written, holding: ref, in: part.segment, failure: &failure) else {
                return .failure(failure ?? .badReference)
            }
        }
        return .success(part.segment)
    }

    /// How many objects of one type an archive holds, and their bytes.
    struct TypeTotal {
        var count = 0
        var bytes = 0
    }

    /// The totals of each type (indexed by `TypeID.rawValue`): every segment
    /// and run-once part read and checked, nothing materialized (for
    /// `info`). Only each part's buffer is allocated, checked.
    func census() -> Result<InlineArray<8, TypeTotal>, ArchiveError> {
        var totals = InlineArray<8, TypeTotal>(repeating: TypeTotal())
        defer { endReads() }
        func count(_ length: Int, at offset: UInt64, objectsSize: Int, checksum: UInt64) -> ArchiveError? {
            var memory: UnsafeMutableRawPointer? = nil
            if posix_memalign(&memory, 16, max(length, 16)) != 0 { return .outOfMemory }
            let base = memory!
            defer { free(base) }
            if let error = preparer.read(length, at: offset, into: base, checksum: checksum, by: .interpreter) {
                return error
            }
            let walked = ObjectImage.forEachObject(in: base, size: objectsSize) { type, object, available in
                guard let size = ObjectImage.walk(type, object, available: available, slot: { _ in true }) else { return nil }
                totals[Int(type.rawValue)].count += 1
                totals[Int(type.rawValue)].bytes += size + (type == .tuple ? Int(CS_GC_HEAD_SIZE) : 0)
                return size
            }
            return walked == nil ? .badReference : nil
        }
        for chunk in chunks {
            if let error = count(chunk.length, at: chunk.offset, objectsSize: Int(chunk.objectsSize), checksum: chunk.checksum) {
                return .failure(error)
            }
        }
        for record in modules {
            let segment = record.segment
            if let error = count(segment.length, at: segment.offset, objectsSize: Int(segment.objectsSize),
                                 checksum: segment.checksum)
                ?? count(Int(record.runOnceSize), at: record.runOnceOffset, objectsSize: Int(record.runOnceSize),
                         checksum: record.runOnceChecksum) {
                return .failure(error)
            }
        }
        return .success(totals)
    }

    /// Points the `slots` of `segment`, which all hold `ref`, at the
    /// interpreter's object for it, each with a reference, and adds one for
    /// each of the `written` slots the preparer pointed at it already (a
    /// pool string's); false and `failure` if it has none. The preparer
    /// checked the ref's bounds.
    @inline(__always)
    private func fill(_ slots: UnsafeBufferPointer<UInt32>, written: Int, holding ref: ObjectRef, in segment: LoadedSegment,
                      failure: inout ArchiveError?) -> Bool {
        func point(at object: UnsafeMutableRawPointer) {
            for offset in slots { segment.address(Int(offset)).storeBytes(of: object, as: UnsafeMutableRawPointer.self) }
        }
        switch ref.tag {
        case .interned:
            guard let target = stringSegment(ref.segment, from: segment, failure: &failure),
                  let string = target.interned[Int(ref.offset)] ?? intern(Int(ref.offset), of: target, failure: &failure)
            else { return false }
            // The slots point at the archived copy already (the preparer's guess).
            if string.raw == target.archivedString(Int(ref.offset)) { return true }
            point(at: string.raw)
            // Archived strings are immortal: counting the slots would only
            // fetch the line another core wrote (read-ahead).
            if !arena.owns(string.raw) { cs_incref_by(string, slots.count + written) }
            return true
        case .singleton:
            guard let object = singleton(ref, failure: &failure) else { return false }
            point(at: object)
            cs_incref_by(object.assumingMemoryBound(to: PyObject.self), slots.count - 1)
            return true
        case .frozenset:
            // One set per slot, as each was archived.
            for offset in slots {
                guard let set = frozenset(segment.address(Int(ref.offset)), rebuilds: ref.segment, failure: &failure)
                else { return false }
                segment.address(Int(offset)).storeBytes(of: set, as: UnsafeMutableRawPointer.self)
            }
            return true
        default:
            failure = .badReference
            return false
        }
    }

    /// The segment whose intern list an interned ref names: `current`
    /// (segment 0) or a pool chunk, ready from now on.
    private func stringSegment(_ number: UInt32, from current: LoadedSegment,
                               failure: inout ArchiveError?) -> LoadedSegment? {
        if number == 0 { return current }
        if let ready = readyChunks[Int(number) - 1] { return ready }
        switch preparer.chunk(number, by: .interpreter) {
        case .success(let prepared):
            readyChunks[Int(number) - 1] = prepared.segment
            return prepared.segment
        case .failure(let error):
            failure = error
            return nil
        }
    }

    /// Interns a segment's string on its first use in this process: the
    /// archived copy, or the interpreter's own if it already has one. The
    /// cache holds no reference, so that the string's count is what
    /// unmarshalled code would give it; the slots keep it alive (they are
    /// never cleared).
    private func intern(_ index: Int, of segment: LoadedSegment, failure: inout ArchiveError?) -> PyObjectPointer? {
        var string: PyObjectPointer? = (segment.base + segment.internOffset(index)).assumingMemoryBound(to: PyObject.self)
        if string!.typeWord != cs_str_type() {
            failure = .badReference
            return nil
        }
        let archived = string!
        PyUnicode_InternInPlace(&string)
        // The interpreter's own copy comes with a reference: not the cache's.
        if string! != archived { cs_decref(string!) }
        // Published for the preparers too (PartPreparer.relocate): archived
        // objects hold counted references to it and never die, so from here
        // on it lives as long as the process.
        cs_store_release_object(segment.interned + index, string)
        return string
    }

    /// A new frozenset of an archived tuple's items, in their archived order,
    /// built again `rebuilds` times (checked by the preparer).
    private func frozenset(_ items: UnsafeMutableRawPointer, rebuilds: UInt32,
                           failure: inout ArchiveError?) -> UnsafeMutableRawPointer? {
        let tuple = items.assumingMemoryBound(to: PyObject.self)
        if tuple.typeWord != cs_tuple_type() {
            failure = .badReference
            return nil
        }
        guard let set = newFrozenset(tuple, rebuilds: rebuilds) else {
            PyErr_Clear()
            failure = .outOfMemory
            return nil
        }
        return set.raw
    }

    /// The interpreter's own object for a singleton ref, with a new reference.
    private func singleton(_ ref: ObjectRef, failure: inout ArchiveError?) -> UnsafeMutableRawPointer? {
        let value = Int32(bitPattern: ref.offset)
        var object: PyObjectPointer?
        switch SingletonKind(rawValue: ref.segment) {
        case .none?: object = cs_none(); cs_incref(object!)
        case .true?: object = cs_true(); cs_incref(object!)
        case .false?: object = cs_false(); cs_incref(object!)
        case .ellipsis?: object = cs_ellipsis(); cs_incref(object!)
        case .emptyTuple?: object = PyTuple_New(0)
        case .emptyBytes?: object = PyBytes_FromStringAndSize(nil, 0)
        case .emptyStr?:
            object = PyUnicode_New(0, 0)
            if value & 1 != 0 { PyUnicode_InternInPlace(&object) }
        case .smallInt? where value >= -5 && value <= 256:
            object = PyLong_FromLong(Int(value))
        case .latin1Char? where value & ~0x1FF == 0:
            object = PyUnicode_FromOrdinal(value & 0xFF)
            if value & 0x100 != 0 { PyUnicode_InternInPlace(&object) }
        default:
            failure = .badReference
            return nil
        }
        guard let object else {
            PyErr_Clear()
            failure = .outOfMemory
            return nil
        }
        return object.raw
    }
}
