import CPythonShim
import CodeShareFormat

/// One segment read into private memory, checked and relocated. Its memory
/// is never freed: frames, functions and the interned-string table may point
/// into it (DESIGN invariant 4).
struct LoadedSegment {
    let base: UnsafeMutableRawPointer
    let descriptor: SegmentDescriptor
    /// Interned strings of the segment, by intern index; filled on first use.
    let interned: UnsafeMutablePointer<PyObjectPointer?>

    var objectsSize: Int { Int(descriptor.objectsSize) }

    func internOffset(_ index: Int) -> Int {
        Int(base.little(objectsSize + 4 * index, as: UInt32.self))
    }
}

/// An open archive: the validated header and tables, the file kept open to
/// read segments on demand, and what this process has loaded so far.
final class ArchiveReader {
    let file: FileDescriptor
    let header: ArchiveHeader
    let modules: [ModuleRecord]
    let chunks: [SegmentDescriptor]
    /// The tables as read; names and metadata start at `stringsStart`.
    let tables: [UInt8]
    let stringsStart: Int
    private var loadedChunks: [LoadedSegment?]
    private var failedChunks: [ArchiveError?]
    private var roots: [PyObjectPointer?]
    /// What this process has read so far: the reader's own counters.
    private(set) var counters = Counters()

    struct Counters {
        var modulesLoaded = 0
        var chunksLoaded = 0
        var bytesRead = 0
    }

    private init(file: FileDescriptor, header: ArchiveHeader, modules: [ModuleRecord],
                 chunks: [SegmentDescriptor], tables: [UInt8], stringsStart: Int) {
        self.file = file
        self.header = header
        self.modules = modules
        self.chunks = chunks
        self.tables = tables
        self.stringsStart = stringsStart
        loadedChunks = [LoadedSegment?](repeating: nil, count: chunks.count)
        failedChunks = [ArchiveError?](repeating: nil, count: chunks.count)
        roots = [PyObjectPointer?](repeating: nil, count: modules.count)
    }

    deinit { file.close() }

    /// Opens and validates an archive for the running interpreter: header,
    /// then the tables' checksum and bounds. No module is read yet.
    static func open(_ path: UnsafePointer<CChar>) -> Result<ArchiveReader, ArchiveError> {
        let file: FileDescriptor
        switch FileDescriptor.openReadOnly(path) {
        case .success(let opened): file = opened
        case .failure(let error): return .failure(.io(errno: error.code))
        }
        let result = validate(file)
        if case .failure = result { file.close() }
        return result
    }

    private static func validate(_ file: FileDescriptor) -> Result<ArchiveReader, ArchiveError> {
        let fileSize: UInt64
        switch file.size() {
        case .success(let size): fileSize = size
        case .failure(let error): return .failure(.io(errno: error.code))
        }
        if fileSize < UInt64(ArchiveHeader.size) { return .failure(fileSize == 0 ? .empty : .truncated) }
        var headerBytes = [UInt8](repeating: 0, count: ArchiveHeader.size)
        if let error = read(file, into: &headerBytes, at: 0) { return .failure(error) }
        let header: ArchiveHeader
        switch headerBytes.withUnsafeBytes({
            ArchiveHeader.decode($0.baseAddress!, fileSize: fileSize, expecting: .running())
        }) {
        case .success(let decoded): header = decoded
        case .failure(let error): return .failure(error)
        }
        var tables = [UInt8](unsafeUninitializedCapacity: Int(header.tablesSize)) { _, count in
            count = Int(header.tablesSize)
        }
        if let error = read(file, into: &tables, at: header.tablesOffset) { return .failure(error) }
        if Checksum.of(tables) != header.tablesChecksum { return .failure(.tablesChecksum) }
        let moduleCount = Int(header.moduleCount), chunkCount = Int(header.chunkCount)
        let fixedSize = moduleCount * ModuleRecord.size + chunkCount * SegmentDescriptor.size
        if fixedSize > tables.count { return .failure(.badReference) }
        var modules: [ModuleRecord] = []
        var chunks: [SegmentDescriptor] = []
        let stringsSize = tables.count - fixedSize
        let ok = tables.withUnsafeBytes { raw -> Bool in
            let base = raw.baseAddress!
            for index in 0..<moduleCount {
                let record = ModuleRecord.decode(base + index * ModuleRecord.size)
                guard record.segment.fits(fileSize: fileSize), record.segment.objectsSize > 0,
                      Int(record.nameOffset) + Int(record.nameLength) <= stringsSize,
                      Int(record.metadataOffset) + Int(record.metadataLength) <= stringsSize
                else { return false }
                modules.append(record)
            }
            for index in 0..<chunkCount {
                let chunk = SegmentDescriptor.decode(base + moduleCount * ModuleRecord.size + index * SegmentDescriptor.size)
                guard chunk.fits(fileSize: fileSize) else { return false }
                chunks.append(chunk)
            }
            return true
        }
        if !ok || Int(header.manifestOffset) + Int(header.manifestLength) > stringsSize {
            return .failure(.badReference)
        }
        return .success(ArchiveReader(file: file, header: header, modules: modules, chunks: chunks,
                                      tables: tables, stringsStart: fixedSize))
    }

    private static func read(_ file: FileDescriptor, into bytes: inout [UInt8], at offset: UInt64) -> ArchiveError? {
        let count = bytes.count
        let result = bytes.withUnsafeMutableBytes { file.read(into: $0.baseAddress!, count: count, at: offset) }
        switch result {
        case .success: return nil
        case .failure(.truncated): return .truncated
        case .failure(.errno(let error)): return .io(errno: error.code)
        }
    }

    // MARK: - Loading

    /// The top-level code object of module `index`, materialized on first
    /// call: its segment and the pool chunks it refers to, nothing else.
    func code(module index: Int) -> Result<PyObjectPointer, ArchiveError> {
        if let root = roots[index] { return .success(root) }
        let descriptor = modules[index].segment
        switch load(descriptor) {
        case .failure(let error):
            return .failure(error)
        case .success(let segment):
            let root = (segment.base + Int(descriptor.root)).assumingMemoryBound(to: PyObject.self)
            if root.type != cs_code_type() { return .failure(.badReference) }
            // Another thread may have finished first (frozenset construction
            // can run the GC, and with it other threads); keep one answer.
            if let winner = roots[index] { return .success(winner) }
            roots[index] = root
            counters.modulesLoaded += 1
            return .success(root)
        }
    }

    /// Reads, checks and relocates one segment.
    private func load(_ descriptor: SegmentDescriptor) -> Result<LoadedSegment, ArchiveError> {
        let base: UnsafeMutableRawPointer
        switch read(descriptor) {
        case .success(let memory): base = memory
        case .failure(let error): return .failure(error)
        }
        counters.bytesRead += descriptor.length
        let interned = UnsafeMutablePointer<PyObjectPointer?>.allocate(capacity: max(Int(descriptor.internCount), 1))
        interned.initialize(repeating: nil, count: max(Int(descriptor.internCount), 1))
        let segment = LoadedSegment(base: base, descriptor: descriptor, interned: interned)
        for index in 0..<Int(descriptor.internCount) where segment.internOffset(index) >= segment.objectsSize {
            return .failure(.badReference)
        }
        if let error = relocate(segment) { return .failure(error) }
        return .success(segment)
    }

    /// Walks the segment's objects in order, giving each its type and every
    /// pointer slot the object its ref names.
    private func relocate(_ segment: LoadedSegment) -> ArchiveError? {
        var failure: ArchiveError? = nil
        let walked = ObjectImage.forEachObject(in: segment.base, size: segment.objectsSize) { type, object, available in
            object.storeBytes(of: UnsafeMutableRawPointer(pythonType(type)), toByteOffset: 8,
                              as: UnsafeMutableRawPointer.self)
            return ObjectImage.walk(type, object, available: available) { slot in
                switch resolve(ObjectRef(raw: object.little(slot, as: UInt64.self)), in: segment) {
                case .success(let pointer):
                    object.storeBytes(of: pointer, toByteOffset: slot, as: UnsafeMutableRawPointer.self)
                    return true
                case .failure(let error):
                    failure = error
                    return false
                }
            }
        }
        guard let objects = walked else { return failure ?? .badReference }
        return objects == Int(segment.descriptor.objectCount) ? nil : .badReference
    }

    /// A segment's bytes in fresh 16-aligned memory, checked against its
    /// checksum before anything else looks at them.
    private func read(_ descriptor: SegmentDescriptor) -> Result<UnsafeMutableRawPointer, ArchiveError> {
        let length = descriptor.length
        var memory: UnsafeMutableRawPointer? = nil
        if posix_memalign(&memory, 16, max(length, 16)) != 0 { return .failure(.outOfMemory) }
        let base = memory!
        // Nothing points into the memory yet: free it on failure.
        switch file.read(into: base, count: length, at: descriptor.offset) {
        case .success: break
        case .failure(.truncated): free(base); return .failure(.truncated)
        case .failure(.errno(let error)): free(base); return .failure(.io(errno: error.code))
        }
        if Checksum.of(base, count: length) != descriptor.checksum { free(base); return .failure(.segmentChecksum) }
        return .success(base)
    }

    /// How many objects of each type, and how many bytes, the archive holds:
    /// every segment read and checked, nothing materialized (for `info`).
    func census() -> Result<[TypeID: (count: Int, bytes: Int)], ArchiveError> {
        var totals: [TypeID: (count: Int, bytes: Int)] = [:]
        for descriptor in modules.map({ $0.segment }) + chunks {
            let base: UnsafeMutableRawPointer
            switch read(descriptor) {
            case .success(let memory): base = memory
            case .failure(let error): return .failure(error)
            }
            defer { free(base) }
            let walked = ObjectImage.forEachObject(in: base, size: Int(descriptor.objectsSize)) { type, object, available in
                guard let size = ObjectImage.walk(type, object, available: available, slot: { _ in true }) else { return nil }
                let total = totals[type] ?? (0, 0)
                totals[type] = (total.count + 1, total.bytes + size + (type == .tuple ? Int(CS_GC_HEAD_SIZE) : 0))
                return size
            }
            if walked == nil { return .failure(.badReference) }
        }
        return .success(totals)
    }

    /// A pool chunk, loaded on first use; a chunk that failed stays failed.
    private func chunk(_ index: Int) -> Result<LoadedSegment, ArchiveError> {
        if let loaded = loadedChunks[index] { return .success(loaded) }
        if let error = failedChunks[index] { return .failure(error) }
        let result = load(chunks[index])
        switch result {
        case .success(let segment):
            loadedChunks[index] = segment
            counters.chunksLoaded += 1
        case .failure(let error): failedChunks[index] = error
        }
        return result
    }

    /// The segment a ref names: the current one, or a pool chunk.
    private func segment(_ number: UInt32, current: LoadedSegment) -> Result<LoadedSegment, ArchiveError> {
        if number == 0 { return .success(current) }
        let index = Int(number) - 1
        if index >= chunks.count { return .failure(.badReference) }
        return chunk(index)
    }

    /// The pointer a slot holding `ref` gets. Archived objects are immortal
    /// and need no reference; the interpreter's objects get one per slot.
    private func resolve(_ ref: ObjectRef, in current: LoadedSegment) -> Result<UnsafeMutableRawPointer, ArchiveError> {
        switch ref.tag {
        case .object:
            switch segment(ref.segment, current: current) {
            case .failure(let error): return .failure(error)
            case .success(let target):
                if Int(ref.offset) >= target.objectsSize { return .failure(.badReference) }
                return .success(target.base + Int(ref.offset))
            }
        case .interned:
            switch segment(ref.segment, current: current) {
            case .failure(let error): return .failure(error)
            case .success(let target):
                let index = Int(ref.offset)
                if index >= Int(target.descriptor.internCount) { return .failure(.badReference) }
                if target.interned[index] == nil {
                    var string: PyObjectPointer? = (target.base + target.internOffset(index)).assumingMemoryBound(to: PyObject.self)
                    if string!.type != cs_str_type() { return .failure(.badReference) }
                    PyUnicode_InternInPlace(&string)
                    target.interned[index] = string
                }
                let string = target.interned[index]!
                cs_incref(string)
                return .success(string.raw)
            }
        case .singleton:
            return singleton(ref)
        case .type:
            guard let id = TypeID(rawValue: ref.segment) else { return .failure(.badReference) }
            return .success(UnsafeMutableRawPointer(pythonType(id)))
        case .frozenset:
            if ref.segment != 0 || Int(ref.offset) >= current.objectsSize { return .failure(.badReference) }
            let items = (current.base + Int(ref.offset)).assumingMemoryBound(to: PyObject.self)
            if items.type != cs_tuple_type() { return .failure(.badReference) }
            guard let set = PyFrozenSet_New(items) else {
                PyErr_Clear()
                return .failure(.outOfMemory)
            }
            return .success(set.raw)
        case .interior:
            if ref.segment != 0 || Int(ref.offset) > current.objectsSize { return .failure(.badReference) }
            return .success(current.base + Int(ref.offset))
        case nil:
            return .failure(.badReference)
        }
    }

    /// The interpreter's own object for a singleton ref, with a new reference.
    private func singleton(_ ref: ObjectRef) -> Result<UnsafeMutableRawPointer, ArchiveError> {
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
        case .smallInt?:
            if value < -5 || value > 256 { return .failure(.badReference) }
            object = PyLong_FromLong(Int(value))
        case .latin1Char?:
            if value & ~0x1FF != 0 { return .failure(.badReference) }
            object = PyUnicode_FromOrdinal(value & 0xFF)
            if value & 0x100 != 0 { PyUnicode_InternInPlace(&object) }
        case nil:
            return .failure(.badReference)
        }
        guard let object else {
            PyErr_Clear()
            return .failure(.outOfMemory)
        }
        return .success(object.raw)
    }
}
