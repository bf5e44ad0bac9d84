import CPythonShim
import CodeShareFormat

/// One function per archived type: lays out the live image of an object as
/// the interpreter itself would allocate it (CPYTHON311.md), with pointer
/// slots holding `ObjectRef`s. The reader's counterpart is type-agnostic: it
/// resolves the refs (ArchiveReader.publish) and builds frozensets.
enum ObjectImage {
    /// Common header: an immortal reference count and the type, patched at load.
    private static func header(_ segment: inout SegmentBuilder, _ offset: Int, _ type: TypeID) {
        segment.store(immortalRefcount, at: offset)
        segment.storeRef(.type(type), at: offset + 8)
    }

    /// A compact str: hash not computed, not interned (the reader interns it
    /// once per process if the original was), kind = smallest that fits.
    static func str(_ string: PyObjectPointer, into segment: inout SegmentBuilder) -> Int {
        let length = cs_str_length(string)
        let kind = Int(cs_str_kind(string))
        let ascii = cs_str_is_ascii(string) != 0
        let headerSize = Int(ascii ? CS_ASCII_HEADER_SIZE : CS_COMPACT_HEADER_SIZE)
        let offset = segment.allocate(size: headerSize + (length + 1) * kind)
        header(&segment, offset, .str)
        segment.store(length, at: offset + Int(CS_STR_LENGTH))
        segment.store(Int(-1), at: offset + Int(CS_STR_HASH))
        var state = UInt32(kind) << UInt32(CS_STR_STATE_KIND_SHIFT) | UInt32(CS_STR_STATE_COMPACT) | UInt32(CS_STR_STATE_READY)
        if ascii { state |= UInt32(CS_STR_STATE_ASCII) }
        segment.store(state, at: offset + Int(CS_STR_STATE))
        if kind == 4 {
            // PyUnicode_New shares the UCS4 data as the wchar_t form (wchar_t is 4 bytes).
            segment.storeRef(ObjectRef(.interior, offset: UInt32(offset + headerSize)), at: offset + Int(CS_STR_WSTR))
            segment.store(length, at: offset + Int(CS_STR_WSTR_LENGTH))
        }
        segment.store(UnsafeRawBufferPointer(start: cs_str_data(string), count: length * kind), at: offset + headerSize)
        return offset
    }

    static func bytes(_ bytes: PyObjectPointer, into segment: inout SegmentBuilder) -> Int {
        let length = bytes.size
        let offset = segment.allocate(size: Int(CS_BYTES_DATA) + length + 1)
        header(&segment, offset, .bytes)
        segment.store(length, at: offset + 16)
        segment.store(Int(-1), at: offset + Int(CS_BYTES_HASH))
        segment.store(UnsafeRawBufferPointer(start: cs_bytes_data(bytes), count: length), at: offset + Int(CS_BYTES_DATA))
        return offset
    }

    /// An int beyond the small-int singletons: ob_size = ±digit count.
    static func int(_ number: PyObjectPointer, into segment: inout SegmentBuilder) -> Int {
        let signedDigits = number.size
        let digits = signedDigits < 0 ? -signedDigits : signedDigits
        let offset = segment.allocate(size: Int(CS_LONG_DIGITS) + 4 * digits)
        header(&segment, offset, .int)
        segment.store(signedDigits, at: offset + 16)
        segment.store(UnsafeRawBufferPointer(start: number.raw + Int(CS_LONG_DIGITS), count: 4 * digits),
                      at: offset + Int(CS_LONG_DIGITS))
        return offset
    }

    static func float(_ number: PyObjectPointer, into segment: inout SegmentBuilder) -> Int {
        let offset = segment.allocate(size: Int(CS_FLOAT_VALUE) + 8)
        header(&segment, offset, .float)
        segment.store(cs_float_value(number).bitPattern, at: offset + Int(CS_FLOAT_VALUE))
        return offset
    }

    static func complex(_ number: PyObjectPointer, into segment: inout SegmentBuilder) -> Int {
        let value = cs_complex_value(number)
        let offset = segment.allocate(size: Int(CS_COMPLEX_IMAG) + 8)
        header(&segment, offset, .complex)
        segment.store(value.real.bitPattern, at: offset + Int(CS_COMPLEX_REAL))
        segment.store(value.imag.bitPattern, at: offset + Int(CS_COMPLEX_IMAG))
        return offset
    }

    /// A tuple behind a zeroed PyGC_Head: untracked, as the collector expects
    /// of an object it may visit but must never move or free.
    static func tuple(_ items: [ObjectRef], into segment: inout SegmentBuilder) -> Int {
        let offset = segment.allocate(size: Int(CS_TUPLE_ITEMS) + 8 * items.count, prefix: Int(CS_GC_HEAD_SIZE))
        header(&segment, offset, .tuple)
        segment.store(items.count, at: offset + 16)
        for (index, item) in items.enumerated() {
            segment.storeRef(item, at: offset + Int(CS_TUPLE_ITEMS) + 8 * index)
        }
        return offset
    }

    /// The object slots of a code object, in layout order.
    static let codeObjectFields: [Int32] = [
        CS_CODE_CONSTS, CS_CODE_NAMES, CS_CODE_EXCEPTIONTABLE, CS_CODE_LOCALSPLUSNAMES,
        CS_CODE_LOCALSPLUSKINDS, CS_CODE_FILENAME, CS_CODE_NAME, CS_CODE_QUALNAME, CS_CODE_LINETABLE,
    ]

    /// A code object as `_PyCode_New` leaves it before first use: the scalar
    /// fields copied, `fields` (refs for `codeObjectFields`) in the object
    /// slots, the run-time caches empty, the bytecode de-specialized.
    static func code(_ code: PyObjectPointer, fields: [ObjectRef], bytecode: PyObjectPointer,
                     into segment: inout SegmentBuilder) -> Int {
        let units = code.size
        let offset = segment.allocate(size: Int(CS_CODE_BASIC_SIZE) + 2 * units)
        header(&segment, offset, .code)
        segment.store(units, at: offset + 16)
        // co_flags .. co_nfreevars, then _co_firsttraceable: plain integers.
        segment.store(UnsafeRawBufferPointer(start: code.raw + 48, count: 48), at: offset + 48)
        segment.store(UnsafeRawBufferPointer(start: code.raw + 168, count: 4), at: offset + 168)
        segment.store(Int16(CS_CODE_INITIAL_WARMUP), at: offset + Int(CS_CODE_WARMUP))
        segment.store(Int16(0), at: offset + Int(CS_CODE_LINEARRAY_ENTRY_SIZE))
        for (field, ref) in zip(codeObjectFields, fields) {
            segment.storeRef(ref, at: offset + Int(field))
        }
        segment.store(UnsafeRawBufferPointer(start: cs_bytes_data(bytecode), count: 2 * units),
                      at: offset + Int(CS_CODE_BASIC_SIZE))
        return offset
    }
}

/// The reader's half: the objects of a segment in order, each with its type.
extension ObjectImage {
    /// Calls `body` with each object's type, address and the bytes left in
    /// the segment; `body` answers the object's size, or nil to stop. Zero
    /// words between objects are padding or a tuple's GC header; every
    /// object starts with its reference count and type: the immortal count
    /// and a type ref as archived; once relocated and `inUse`, any non-zero
    /// count (the program holds references) and the type's address.
    /// Returns the number of objects, or nil for an image no writer
    /// produces or a stop.
    @inline(__always)
    static func forEachObject(in base: UnsafeMutableRawPointer, size end: Int, inUse: Bool = false,
                              _ body: (TypeID, UnsafeMutableRawPointer, Int) -> Int?) -> Int? {
        var position = 0, objects = 0
        while true {
            while position < end && base.load(fromByteOffset: position, as: UInt64.self) == 0 { position += 8 }
            if position >= end { return objects }
            if position + 16 > end { return nil }  // checked before the type word is read
            let type: TypeID?
            if inUse {
                type = TypeID(pythonType: base.load(fromByteOffset: position + 8, as: UnsafeMutablePointer<PyTypeObject>.self))
            } else {
                let typeRef = ObjectRef(raw: base.little(position + 8, as: UInt64.self))
                type = base.load(fromByteOffset: position, as: Int.self) == immortalRefcount && typeRef.tag == .type
                    ? TypeID(rawValue: typeRef.segment) : nil
            }
            guard let type, let size = body(type, base + position, end - position) else { return nil }
            position = (position + size + 7) & ~7
            objects += 1
        }
    }
}

/// The reader's half, mirroring the writer type by type: how big an archived
/// object is and where its pointer slots are (after the type slot at 8).
/// Checked against `available` bytes so a bad length cannot walk off the
/// segment; returns nil for an image no writer produces.
extension ObjectImage {
    @inline(__always)
    static func walk(_ type: TypeID, _ object: UnsafeMutableRawPointer, available: Int,
                     slot: (Int) -> Bool) -> Int? {
        let count = object.load(fromByteOffset: 16, as: Int.self)
        // No count can exceed `available` and still fit: each case checks
        // that first, so that its size arithmetic cannot overflow (a trap).
        switch type {
        case .str:
            let state = object.load(fromByteOffset: Int(CS_STR_STATE), as: UInt32.self)
            let kind = Int(state >> UInt32(CS_STR_STATE_KIND_SHIFT) & 7)
            let ascii = state & UInt32(CS_STR_STATE_ASCII) != 0
            // Compact and ready, as the writer lays every str out; anything
            // else would have CPython follow pointers the image does not
            // hold. Interning's bits are set once the str is in use.
            let laidOut = UInt32(kind) << UInt32(CS_STR_STATE_KIND_SHIFT) | UInt32(CS_STR_STATE_COMPACT)
                | UInt32(CS_STR_STATE_READY) | (ascii ? UInt32(CS_STR_STATE_ASCII) : 0)
            guard count >= 0, count < available, kind == 1 || (!ascii && (kind == 2 || kind == 4)),
                  state & ~UInt32(CS_STR_STATE_INTERNED) == laidOut else { return nil }
            let size = Int(ascii ? CS_ASCII_HEADER_SIZE : CS_COMPACT_HEADER_SIZE) + (count + 1) * kind
            guard size <= available else { return nil }
            if kind == 4 && !slot(Int(CS_STR_WSTR)) { return nil }
            return size
        case .bytes:
            guard count >= 0, count < available else { return nil }
            let size = Int(CS_BYTES_DATA) + count + 1
            return size <= available ? size : nil
        case .int:
            guard count > -available, count < available else { return nil }
            let size = Int(CS_LONG_DIGITS) + 4 * abs(count)
            return size <= available ? size : nil
        case .float:
            return Int(CS_FLOAT_VALUE) + 8 <= available ? Int(CS_FLOAT_VALUE) + 8 : nil
        case .complex:
            return Int(CS_COMPLEX_IMAG) + 8 <= available ? Int(CS_COMPLEX_IMAG) + 8 : nil
        case .tuple:
            guard count > 0, count < available else { return nil }
            let size = Int(CS_TUPLE_ITEMS) + 8 * count
            guard size <= available else { return nil }
            for index in 0..<count where !slot(Int(CS_TUPLE_ITEMS) + 8 * index) { return nil }
            return size
        case .code:
            guard count > 0, count < available else { return nil }
            let size = Int(CS_CODE_BASIC_SIZE) + 2 * count
            guard size <= available else { return nil }
            for field in codeObjectFields where !slot(Int(field)) { return nil }
            return size
        }
    }
}
