import CPythonShim
import CodeShareFormat

/// Why a module cannot be archived; the Python layer reports it and skips it.
enum WriteFailure: Error {
    /// A constant of a type marshal may write but codeshare does not lay out.
    case unsupportedConstant
    /// A Python error is set (from a C API call).
    case python
    /// Writing the output file failed.
    case io(Errno)
}

/// One module to archive: its name, top-level code and opaque metadata.
struct ModuleEntry {
    let name: [UInt8]
    let code: PyObjectPointer
    let metadata: [UInt8]
    /// How plain import makes its constant sets (see `plainImportRecipe`): a
    /// tuple of (order, rebuilds) tuples, the order a .pyc holds or the one
    /// the compiler inserts in; else nil.
    let setRecipes: PyObjectPointer?
}

/// Lays out the code objects of many modules as one archive.
///
/// Two passes. `analyze` walks every module's object graph and finds the
/// leaves (str, bytes, int, float, complex) that several modules share (one
/// object, an interned string, or equal code tables); `build` puts them into
/// the pool (see `PoolPolicy`) and
/// everything else into the module's own segment, children before parents.
/// It runs in a child process forked for it (`write` in Module.swift).
struct ArchiveWriter {
    /// Pool chunks close once they pass this size: one page, so that loading a
    /// module touches few unrelated objects.
    static let chunkTarget = 4 * 1024

    private struct Leaf {
        let object: PyObjectPointer
        let type: TypeID
        let interned: Bool
        var lastModule: Int
        var moduleCount: Int
        /// Where the pool placed it, for leaves shared by several modules.
        var poolRef: ObjectRef?
    }

    private enum Kind {
        case singleton(ObjectRef)
        case leaf(TypeID)
        case tuple
        case frozenset
        case code
    }

    private var leaves: [Leaf] = []
    private var leafByAddress: [UInt: Int] = [:]
    /// The code tables seen, by their bytes (see `analyze`).
    private var codeTableByValue: [[UInt8]: Int] = [:]
    /// How the reader is to make each frozenset: its elements, as a tuple
    /// owned by the writer, in the order to insert them, and how many times
    /// to build the set again from its own order (ObjectRef.Tag.frozenset).
    private var frozensetRecipes: [UInt: (items: PyObjectPointer, rebuilds: UInt32)] = [:]
    /// De-specialized bytecode of each code object, owned by the writer.
    private var bytecode: [UInt: PyObjectPointer] = [:]
    /// How many references to each object the archived objects hold: an
    /// object with more references than that is kept by the program.
    private var graphReferences: [UInt: Int] = [:]
    /// The tuples whose items `graphReferences` counted: one reached twice
    /// holds them once.
    private var countedTuples: Set<UInt> = []

    init() {}

    func release() {
        for (_, set) in frozensetRecipes { cs_decref(set.items) }
        for (_, code) in bytecode { cs_decref(code) }
    }

    // MARK: - Classification

    private func classify(_ object: PyObjectPointer) throws(WriteFailure) -> Kind {
        if object == cs_none() { return .singleton(.singleton(.none)) }
        if object == cs_true() { return .singleton(.singleton(.true)) }
        if object == cs_false() { return .singleton(.singleton(.false)) }
        if object == cs_ellipsis() { return .singleton(.singleton(.ellipsis)) }
        let type = object.type
        if type == cs_str_type() {
            let length = cs_str_length(object)
            let interned: Int32 = cs_str_is_interned(object) != 0 ? 1 : 0
            if length == 0 { return .singleton(.singleton(.emptyStr, value: interned)) }
            if length == 1 && cs_str_kind(object) == 1 {
                // Interned, the one the process interned, which the reader
                // interns again. Else the interpreter's own, which marshal gives
                // for each it reads; the compiler may make another (the '%' of a
                // '%%' in a %-format it turns into an f-string), which a module
                // that plain import compiles at each start holds.
                let char = Int32(cs_str_data(object).load(as: UInt8.self))
                guard let own = PyUnicode_FromOrdinal(char) else { throw .python }
                cs_decref(own)   // the interpreter keeps it
                if interned != 0 || own == object {
                    return .singleton(.singleton(.latin1Char, value: char | interned << 8))
                }
            }
            return .leaf(.str)
        }
        if type == cs_bytes_type() {
            return object.size == 0 ? .singleton(.singleton(.emptyBytes)) : .leaf(.bytes)
        }
        if type == cs_int_type() {
            let digits = object.size
            if digits == 0 { return .singleton(.singleton(.smallInt, value: 0)) }
            if digits == 1 || digits == -1 {
                let digit = Int32(object.raw.load(fromByteOffset: Int(CS_LONG_DIGITS), as: UInt32.self))
                let value = digits < 0 ? -digit : digit
                if value >= -5 && value <= 256 { return .singleton(.singleton(.smallInt, value: value)) }
            }
            return .leaf(.int)
        }
        if type == cs_float_type() { return .leaf(.float) }
        if type == cs_complex_type() { return .leaf(.complex) }
        if type == cs_tuple_type() {
            return object.size == 0 ? .singleton(.singleton(.emptyTuple)) : .tuple
        }
        if type == cs_frozenset_type() { return .frozenset }
        if type == cs_code_type() { return .code }
        throw .unsupportedConstant
    }

    // MARK: - Pass 1: analysis

    /// The code object's fields that hold its own bytes tables: line numbers,
    /// exception handlers and the kinds of its locals.
    private static let codeTableFields: [Int32] = [CS_CODE_LINETABLE, CS_CODE_EXCEPTIONTABLE, CS_CODE_LOCALSPLUSKINDS]

    private func bytesValue(_ table: PyObjectPointer) -> [UInt8] {
        [UInt8](UnsafeRawBufferPointer(start: cs_bytes_data(table), count: table.size))
    }

    /// Walks one module's objects, counting which leaves it uses. Leaves go
    /// by identity: plain import gives each module its own copy of an equal
    /// constant (`a.S is b.S` is false, and pickle writes both), so only one
    /// object (an interned string) is shared. A code object's tables
    /// (`codeTableFields`), which a program reaches only through the code
    /// object, go by value too: equal ones are stored once. `setRecipes`: the
    /// module's `ModuleEntry.setRecipes`. `isReference`: whether the walk
    /// reached `object` through a reference not counted before.
    mutating func analyze(_ object: PyObjectPointer, module: Int, setRecipes: PyObjectPointer?,
                          isCodeTable: Bool = false, isReference: Bool = true) throws(WriteFailure) {
        let kind = try classify(object)
        if isReference { graphReferences[object.address, default: 0] += 1 }
        switch kind {
        case .singleton:
            return
        case .leaf(let type):
            let index: Int
            if let known = leafByAddress[object.address] {
                index = known
            } else {
                let table = isCodeTable && type == .bytes ? bytesValue(object) : nil
                if let table, let known = codeTableByValue[table] {
                    index = known
                } else {
                    index = leaves.count
                    leaves.append(Leaf(object: object, type: type, interned: type == .str && cs_str_is_interned(object) != 0,
                                       lastModule: -1, moduleCount: 0))
                    if let table { codeTableByValue[table] = index }
                }
                leafByAddress[object.address] = index
            }
            if leaves[index].lastModule != module {
                leaves[index].lastModule = module
                leaves[index].moduleCount += 1
            }
        case .tuple:
            // Reached again, a container's references are counted already;
            // what it holds is walked again for the module's use of leaves.
            let countsItsReferences = countedTuples.insert(object.address).inserted
            for index in 0..<object.size {
                try analyze(PyTuple_GetItem(object, index)!, module: module, setRecipes: setRecipes,
                            isReference: countsItsReferences)
            }
        case .frozenset:
            let countsItsReferences = frozensetRecipes[object.address] == nil
            if countsItsReferences {
                var recipe = setRecipes == nil ? nil : try plainImportRecipe(object, proposed: setRecipes!)
                if recipe == nil { recipe = (try marshalOrdered(object), 0) }
                frozensetRecipes[object.address] = recipe!
                // The set's own references to its elements (the tuple's are counted by the walk).
                let items = recipe!.items
                for index in 0..<items.size { graphReferences[PyTuple_GetItem(items, index)!.address, default: 0] += 1 }
            }
            try analyze(frozensetRecipes[object.address]!.items, module: module, setRecipes: setRecipes,
                        isReference: countsItsReferences)
        case .code:
            let countsItsReferences = bytecode[object.address] == nil
            if countsItsReferences {
                guard let code = PyCode_GetCode(OpaquePointer(object).map { UnsafeMutablePointer<PyCodeObject>($0) })
                else { throw .python }
                bytecode[object.address] = code
            }
            for field in ObjectImage.codeObjectFields {
                try analyze(object.raw.load(fromByteOffset: Int(field), as: PyObjectPointer.self), module: module,
                            setRecipes: setRecipes, isCodeTable: ArchiveWriter.codeTableFields.contains(field),
                            isReference: countsItsReferences)
            }
        }
    }

    /// How plain import made a frozenset, as the reader is to make it again:
    /// its elements as a tuple in the order they went in, and how many times
    /// the set was then built again from its own order; nil if no recipe
    /// tried gives back its table. A .pyc's load inserts them in the order
    /// the .pyc holds them (recorder.py's `stored_set_orders`). The compiler
    /// inserts them in the order of the source, builds the set again as it
    /// merges it with the module's constants, and once more where the code
    /// object, as it interns the set's strs, finds another (recorder.py's
    /// `last_step_ran`). Elements that collide in the table take their slots
    /// in the order they went in: `[x for x in {16, 8, 0, 1}]` gives
    /// [16, 8, 0, 1] compiled, [0, 1, 8, 16] from a .pyc. Tried: each of
    /// `proposed` (recorder.py's recipes), then the set's own order. A
    /// recipe gives its set under any PYTHONHASHSEED; the set's own order
    /// only under the dump's.
    private func plainImportRecipe(_ set: PyObjectPointer, proposed: PyObjectPointer)
        throws(WriteFailure) -> (items: PyObjectPointer, rebuilds: UInt32)? {
        let count = PySet_Size(set)
        for index in 0..<PyTuple_Size(proposed) {
            let recipe = PyTuple_GetItem(proposed, index)!
            guard cs_is_tuple(recipe) != 0 && recipe.size == 2 else { continue }
            let order = PyTuple_GetItem(recipe, 0)!, times = PyTuple_GetItem(recipe, 1)!
            guard cs_is_tuple(order) != 0 && order.size == count && times.type == cs_int_type() else { continue }
            let rebuilds = PyLong_AsLong(times)
            guard rebuilds >= 0 && rebuilds <= Int(ObjectRef.frozensetRebuildsLimit) else {
                PyErr_Clear()
                continue
            }
            if try remakes(set, from: order, rebuilds: UInt32(rebuilds)) {
                cs_incref(order)
                return (order, UInt32(rebuilds))
            }
        }
        guard let own = PySequence_Tuple(set) else { throw .python }
        do throws(WriteFailure) {
            if try remakes(set, from: own, rebuilds: 0) { return (own, 0) }
        } catch {
            cs_decref(own)
            throw error
        }
        cs_decref(own)
        return nil
    }

    /// Whether the set the reader makes of `order` and `rebuilds` holds the
    /// elements of `set` in the same slots, the same objects. An order given
    /// through the API that holds what no set can (a list) does not.
    private func remakes(_ set: PyObjectPointer, from order: PyObjectPointer,
                         rebuilds: UInt32) throws(WriteFailure) -> Bool {
        guard let rebuilt = newFrozenset(order, rebuilds: rebuilds) else {
            guard PyErr_ExceptionMatches(PyExc_TypeError) != 0 else { throw .python }
            PyErr_Clear()
            return false
        }
        defer { cs_decref(rebuilt) }
        let mask = cs_set_mask(set)
        return cs_set_mask(rebuilt) == mask && (0...mask).allSatisfy { cs_set_slot(set, $0) == cs_set_slot(rebuilt, $0) }
    }

    /// The elements of a frozenset as a tuple, in the order `marshal.dumps`
    /// writes them (3.11 sorts them by their own marshal bytes, which depend
    /// on reference counts). The reader inserts them in this order, so the
    /// set iterates as one from `marshal.loads` would. It is a .pyc's own
    /// order only where the elements are referenced and interned as when the
    /// .pyc was written: the dump gives the order a .pyc holds as a recipe
    /// instead (recorder.py's `bytecode_code`). Read back as a tuple:
    /// the frozenset's marshal bytes with the type code changed to tuple's;
    /// each element read back is then swapped for the set's own, since the
    /// compiler shares constants across a module (a tuple in a set may be
    /// another function's constant too) and marshal keeps them shared.
    private func marshalOrdered(_ set: PyObjectPointer) throws(WriteFailure) -> PyObjectPointer {
        guard let marshalled = PyMarshal_WriteObjectToString(set, Py_MARSHAL_VERSION) else { throw .python }
        defer { cs_decref(marshalled) }
        var bytes = [UInt8](UnsafeRawBufferPointer(start: cs_bytes_data(marshalled), count: marshalled.size))
        let flagRef: UInt8 = 0x80, typeFrozenset: UInt8 = 0x3E, typeTuple: UInt8 = 0x28
        guard bytes.first.map({ $0 & ~flagRef }) == typeFrozenset else { throw .unsupportedConstant }
        bytes[0] = bytes[0] & flagRef | typeTuple
        let tuple = bytes.withUnsafeBytes {
            PyMarshal_ReadObjectFromString($0.baseAddress!.assumingMemoryBound(to: CChar.self), $0.count)
        }
        guard let tuple else { throw .python }
        // The set's own elements, by value (a fresh tuple: ours to change).
        guard let own = PyDict_New() else { cs_decref(tuple); throw .python }
        defer { cs_decref(own) }
        guard let elements = PyObject_GetIter(set) else { cs_decref(tuple); throw .python }
        while let element = PyIter_Next(elements) {
            let stored = PyDict_SetItem(own, element, element)
            cs_decref(element)
            if stored != 0 { break }
        }
        cs_decref(elements)
        if PyErr_Occurred() != nil { cs_decref(tuple); throw .python }
        for index in 0..<tuple.size {
            // A NaN equals no element: its copy stays, another object than the set's.
            guard let element = PyDict_GetItemWithError(own, PyTuple_GetItem(tuple, index)) else {
                if PyErr_Occurred() != nil { cs_decref(tuple); throw .python }
                continue
            }
            cs_incref(element)
            PyTuple_SetItem(tuple, index, element)
        }
        return tuple
    }

    // MARK: - Pass 2: layout

    /// How the archive's modules will be loaded, which decides what the
    /// shared pool holds.
    enum PoolPolicy {
        /// A program's imports, loaded together in the order of the entries:
        /// every leaf used by two or more modules (see `analyze`) is stored
        /// once and interned once, in order of first use, so chunks are read
        /// as imports reach them.
        case loadedTogether
        /// Modules loaded one at a time from a large collection: only leaves
        /// used by at least 1/16 of the modules go to the pool, most widely used
        /// first; every module needs those first few chunks (names like `self`).
        /// Rarer leaves are copied into each module's segment: pooled they would
        /// be scattered over many chunks (measured on the whole stdlib: `json`
        /// read 30 chunks for a 17 KB segment with a threshold of 2, 4 at 1/16,
        /// for a 5% larger archive).
        case loadedAlone
    }

    /// Lays out the pool in page-sized chunks, as `policy` says.
    mutating func buildPool(moduleCount: Int, policy: PoolPolicy) -> [SegmentBuilder] {
        var chunks: [SegmentBuilder] = []
        var chunk = SegmentBuilder()
        let shared: [Int]
        switch policy {
        case .loadedTogether:
            shared = leaves.indices.filter { leaves[$0].moduleCount >= 2 }
        case .loadedAlone:
            let threshold = max(2, (moduleCount + 15) / 16)
            shared = leaves.indices.filter { leaves[$0].moduleCount >= threshold }
                .sorted { (leaves[$0].moduleCount, $1) > (leaves[$1].moduleCount, $0) }
        }
        for index in shared {
            if chunk.size >= ArchiveWriter.chunkTarget {
                chunks.append(chunk)
                chunk = SegmentBuilder()
            }
            let local = place(leaf: leaves[index], in: &chunk)
            leaves[index].poolRef = ObjectRef(local.tag!, segment: UInt32(chunks.count + 1), offset: local.offset)
        }
        if chunk.size > 0 { chunks.append(chunk) }
        return chunks
    }

    /// State of one module segment under construction.
    struct ModuleLayout {
        var segment = SegmentBuilder()
        var placed: [UInt: ObjectRef] = [:]
        var localLeaves: [Int: ObjectRef] = [:]
    }

    private func place(leaf: Leaf, in segment: inout SegmentBuilder) -> ObjectRef {
        let offset: Int
        switch leaf.type {
        case .str: offset = ObjectImage.str(leaf.object, into: &segment)
        case .bytes: offset = ObjectImage.bytes(leaf.object, into: &segment)
        case .int: offset = ObjectImage.int(leaf.object, into: &segment)
        case .float: offset = ObjectImage.float(leaf.object, into: &segment)
        case .complex: offset = ObjectImage.complex(leaf.object, into: &segment)
        case .tuple, .code: fatalError("not a leaf type")
        }
        if leaf.interned {
            return ObjectRef(.interned, offset: segment.addIntern(stringAt: offset))
        }
        return ObjectRef(.object, offset: UInt32(offset))
    }

    /// Lays out `object` (already analyzed) in a module segment; returns the
    /// ref a slot uses to point at it.
    func place(_ object: PyObjectPointer, in layout: inout ModuleLayout) throws(WriteFailure) -> ObjectRef {
        switch try classify(object) {
        case .singleton(let ref):
            return ref
        case .leaf:
            let index = leafByAddress[object.address]!
            if let pooled = leaves[index].poolRef { return pooled }
            if let local = layout.localLeaves[index] { return local }
            let ref = place(leaf: leaves[index], in: &layout.segment)
            layout.localLeaves[index] = ref
            return ref
        case .tuple:
            if let known = layout.placed[object.address] { return known }
            var items: [ObjectRef] = []
            for index in 0..<object.size { items.append(try place(PyTuple_GetItem(object, index)!, in: &layout)) }
            let ref = ObjectRef(.object, offset: UInt32(ObjectImage.tuple(items, into: &layout.segment)))
            layout.placed[object.address] = ref
            return ref
        case .frozenset:
            if let known = layout.placed[object.address] { return known }
            let recipe = frozensetRecipes[object.address]!
            let items = try place(recipe.items, in: &layout)
            let ref = ObjectRef(.frozenset, segment: recipe.rebuilds, offset: items.offset)
            layout.placed[object.address] = ref
            return ref
        case .code:
            if let known = layout.placed[object.address] { return known }
            var fields: [ObjectRef] = []
            for field in ObjectImage.codeObjectFields {
                fields.append(try place(object.raw.load(fromByteOffset: Int(field), as: PyObjectPointer.self), in: &layout))
            }
            let offset = ObjectImage.code(object, fields: fields, bytecode: bytecode[object.address]!, into: &layout.segment)
            let ref = ObjectRef(.object, offset: UInt32(offset))
            layout.placed[object.address] = ref
            return ref
        }
    }

    /// Lays out, before a module's run-once part begins, what may outlive its
    /// body: every function code object the module and class bodies hold
    /// (with all they reach), every interned string the bodies use (the
    /// interned-string table refers to those without counting a reference),
    /// the elements of their constant frozensets (the set the reader makes
    /// holds them) and what of the bodies' constants the program still kept
    /// when it was dumped (docstrings, `__all__`, class attributes; the items
    /// of a constant tuple a dict or list was built from: kept again in later
    /// runs, so their pages would not be given back anyway). Everything else
    /// the bodies reach then goes to the run-once part.
    func placeOutliving(body code: PyObjectPointer, in layout: inout ModuleLayout) throws(WriteFailure) {
        for field in ObjectImage.codeObjectFields where field != CS_CODE_CONSTS {
            try placeKept(code.raw.load(fromByteOffset: Int(field), as: PyObjectPointer.self), in: &layout)
        }
        let constants = code.raw.load(fromByteOffset: Int(CS_CODE_CONSTS), as: PyObjectPointer.self)
        for index in 0..<constants.size {
            let constant = PyTuple_GetItem(constants, index)!
            if case .code = try classify(constant) {
                if cs_code_is_body(constant) != 0 {
                    try placeOutliving(body: constant, in: &layout)
                } else {
                    _ = try place(constant, in: &layout)
                }
            } else {
                try placeKept(constant, in: &layout)
            }
        }
    }

    /// Lays out, first in the run-once part, the constants the module and
    /// class bodies hold. A program keeps some of them (docstrings, `__all__`,
    /// class attributes); nothing keeps the bodies' code objects and their
    /// tables, which follow: apart from the kept constants they fill whole
    /// pages that can be given back once the module has run.
    func placeBodyConstants(body code: PyObjectPointer, in layout: inout ModuleLayout) throws(WriteFailure) {
        let constants = code.raw.load(fromByteOffset: Int(CS_CODE_CONSTS), as: PyObjectPointer.self)
        for index in 0..<constants.size {
            let constant = PyTuple_GetItem(constants, index)!
            if case .code = try classify(constant) {
                if cs_code_is_body(constant) != 0 { try placeBodyConstants(body: constant, in: &layout) }
            } else {
                _ = try place(constant, in: &layout)
            }
        }
    }

    /// Places `object` if the program kept it (it has more references than
    /// the archived objects hold); else the interned strings and the kept
    /// objects among it and the items of the tuples it is (a body that
    /// builds a dict or a list from a constant tuple, `{'a b': 1}` or
    /// `['x y', 'z']`, keeps the items, not the tuple), and every element of
    /// the frozensets it is.
    private func placeKept(_ object: PyObjectPointer, in layout: inout ModuleLayout) throws(WriteFailure) {
        switch try classify(object) {
        case .singleton, .code:
            break
        case _ where cs_refcount(object) > graphReferences[object.address] ?? 0:
            _ = try place(object, in: &layout)
        case .leaf:
            if leaves[leafByAddress[object.address]!].interned { _ = try place(object, in: &layout) }
        case .tuple:
            for index in 0..<object.size { try placeKept(PyTuple_GetItem(object, index)!, in: &layout) }
        case .frozenset:
            // The set the reader makes of them holds its elements as long as
            // the part lasts; the recipe's tuple only goes into it.
            let items = frozensetRecipes[object.address]!.items
            for index in 0..<items.size { _ = try place(PyTuple_GetItem(items, index)!, in: &layout) }
        }
    }

    // MARK: - Assembly

    /// Writes the archive file for `modules` (each already analyzed) to
    /// `output`, a segment at a time and the header last, and answers its
    /// size. The whole file is never in memory: built in one array, it was
    /// most of what a dump added to the program's peak (growth by doubling,
    /// then the copy into a bytes object).
    mutating func build(_ modules: [ModuleEntry], manifest: [UInt8], policy: PoolPolicy, identity: InterpreterIdentity,
                        createdTime: UInt64, to output: FileDescriptor) throws(WriteFailure) -> UInt64 {
        var end = UInt64(ArchiveHeader.size)
        /// Where the next segment starts: 16-aligned, the gap read as zeros.
        func nextSegment() -> UInt64 {
            end = (end + 15) & ~15
            return end
        }
        func append(_ bytes: [UInt8]) throws(WriteFailure) {
            try ArchiveWriter.write(bytes, at: end, to: output)
            end += UInt64(bytes.count)
        }
        var chunkDescriptors: [SegmentDescriptor] = []
        for chunk in buildPool(moduleCount: modules.count, policy: policy) {
            let (bytes, descriptor, _) = chunk.finish(fileOffset: nextSegment())
            try append(bytes)
            chunkDescriptors.append(descriptor)
        }
        var records: [ModuleRecord] = []
        var strings = ByteBuffer()
        for module in modules {
            var layout = ModuleLayout()
            try placeOutliving(body: module.code, in: &layout)
            layout.segment.beginRunOnce()
            try placeBodyConstants(body: module.code, in: &layout)
            let root = try place(module.code, in: &layout)
            let (bytes, descriptor, runOnce) = layout.segment.finish(fileOffset: nextSegment(), root: Int(root.offset))
            try append(bytes)
            let nameOffset = strings.count
            strings.append(module.name)
            let metadataOffset = strings.count
            strings.append(module.metadata)
            records.append(ModuleRecord(segment: descriptor, runOnceSize: runOnce.size,
                                        runOnceObjectCount: runOnce.objectCount, runOnceChecksum: runOnce.checksum,
                                        nameOffset: UInt32(nameOffset), nameLength: UInt32(module.name.count),
                                        metadataOffset: UInt32(metadataOffset), metadataLength: UInt32(module.metadata.count)))
        }
        let manifestOffset = strings.count
        strings.append(manifest)
        var tables = ByteBuffer()
        for record in records { record.encode(into: &tables) }
        for descriptor in chunkDescriptors { descriptor.encode(into: &tables) }
        // Name and metadata offsets are relative to this string area.
        tables.append(strings.bytes)
        var header = ArchiveHeader(identity: identity)
        header.createdTime = createdTime
        header.moduleCount = UInt32(records.count)
        header.chunkCount = UInt32(chunkDescriptors.count)
        header.tablesOffset = nextSegment()
        header.tablesSize = UInt64(tables.count)
        header.tablesChecksum = Checksum.of(tables.bytes)
        header.manifestOffset = UInt32(manifestOffset)
        header.manifestLength = UInt32(manifest.count)
        header.loadedTogether = policy == .loadedTogether
        try append(tables.bytes)
        header.fileSize = end
        try ArchiveWriter.write(header.encoded(), at: 0, to: output)
        return end
    }

    private static func write(_ bytes: [UInt8], at offset: UInt64, to output: FileDescriptor) throws(WriteFailure) {
        let result = bytes.withUnsafeBytes { output.write(from: $0.baseAddress!, count: $0.count, at: offset) }
        if case .failure(let error) = result { throw .io(error) }
    }
}
