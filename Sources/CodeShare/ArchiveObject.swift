import CPythonShim
import CodeShareFormat

/// What `codeshare.archive.Archive` (archive_type.c) asks of its reader:
/// each function converts between Python objects and the `ArchiveReader`
/// the object owns, and raises what the reader refuses as ArchiveError.
/// The object uses the reader in place: copying it would cost each import
/// a few hundred bytes of memcpy.

private func reader(_ raw: UnsafeMutableRawPointer?) -> UnsafeMutablePointer<ArchiveReader> {
    raw!.assumingMemoryBound(to: ArchiveReader.self)
}

/// Opens and validates the archive at `path` for `archive`: its reader, the
/// module names in order, their indexes by name, and the manifest.
/// `keepOpen`: the file stays open until `cs_reader_close_file`.
@_cdecl("cs_reader_open")
func readerOpen(_ archive: UnsafeMutablePointer<CSArchiveObject>, _ path: PyObjectPointer, _ keepOpen: Int32) -> Int32 {
    var encoded: PyObjectPointer? = nil
    guard PyUnicode_FSConverter(path, &encoded) != 0, let encoded else { return -1 }
    defer { cs_decref(encoded) }
    let opened = ArchiveReader.open(cs_bytes_data(encoded), keepOpen: keepOpen != 0)
    guard case .success(let reader) = opened else {
        if case .failure(let error) = opened { raiseArchiveError(error) }
        return -1
    }
    // Out of memory the archive is refused like any other: the program
    // runs with plain import.
    guard let cell = checkedMemory(for: ArchiveReader.self, count: 1) else {
        reader.close()
        raiseArchiveError(.outOfMemory)
        return -1
    }
    // The object owns the reader from here, and frees it with itself.
    cell.initialize(to: reader)
    archive.pointee.reader = UnsafeMutableRawPointer(cell)
    let base = reader.tables.baseAddress!.assumingMemoryBound(to: CChar.self) + reader.stringsStart
    guard let names = PyList_New(reader.modules.count) else { return -1 }
    archive.pointee.names = names
    guard let index = PyDict_New() else { return -1 }
    archive.pointee.index = index
    for (position, record) in reader.modules.enumerated() {
        guard let name = PyUnicode_DecodeUTF8(base + Int(record.nameOffset), Int(record.nameLength), nil) else {
            return refuseUndecodable()
        }
        PyList_SetItem(names, position, name)
        guard let number = PyLong_FromSsize_t(position) else { return -1 }
        defer { cs_decref(number) }
        if PyDict_SetItem(index, name, number) != 0 { return -1 }
    }
    archive.pointee.manifest = PyMarshal_ReadObjectFromString(base + Int(reader.header.manifestOffset),
                                                              Int(reader.header.manifestLength))
    return archive.pointee.manifest == nil ? refuseUndecodable() : 0
}

/// Turns the error of decoding a name, the manifest or a module's metadata
/// into the archive's refusal (out of memory stays one): checksums that
/// hold do not make the bytes what a writer wrote. Returns -1.
private func refuseUndecodable() -> Int32 {
    let error: ArchiveError = cs_error_is_memory() != 0 ? .outOfMemory : .undecodableIndex
    PyErr_Clear()
    raiseArchiveError(error)
    return -1
}

@_cdecl("cs_reader_close")
func readerClose(_ raw: UnsafeMutableRawPointer?) {
    let cell = reader(raw)
    cell.pointee.close()
    cell.deinitialize(count: 1)
    free(cell)
}

@_cdecl("cs_reader_close_file")
func readerCloseFile(_ raw: UnsafeMutableRawPointer?) {
    reader(raw).pointee.closeFile()
}

/// What was recorded with module `index`, unmarshalled.
@_cdecl("cs_reader_metadata")
func readerMetadata(_ raw: UnsafeMutableRawPointer?, _ index: Int) -> PyObjectPointer? {
    let archive = reader(raw)
    let record = archive.pointee.modules[index]
    let base = archive.pointee.tables.baseAddress!.assumingMemoryBound(to: CChar.self) + archive.pointee.stringsStart
    guard let metadata = PyMarshal_ReadObjectFromString(base + Int(record.metadataOffset), Int(record.metadataLength))
    else {
        _ = refuseUndecodable()
        return nil
    }
    return metadata
}

@_cdecl("cs_reader_code")
func readerCode(_ raw: UnsafeMutableRawPointer?, _ index: Int) -> PyObjectPointer? {
    switch reader(raw).pointee.code(module: index) {
    case .success(let code):
        cs_incref(code)
        return code
    case .failure(let error):
        raiseArchiveError(error)
        return nil
    }
}

@_cdecl("cs_reader_release")
func readerRelease(_ raw: UnsafeMutableRawPointer?, _ index: Int, _ protect: Int32) -> PyObjectPointer? {
    PyLong_FromSsize_t(reader(raw).pointee.release(module: index, protect: protect != 0))
}

@_cdecl("cs_reader_read_ahead")
func readerReadAhead(_ raw: UnsafeMutableRawPointer?, _ after: Int, _ now: Int32) -> PyObjectPointer? {
    PyBool_FromLong(reader(raw).pointee.startReadingAhead(after: after, now: now != 0) ? 1 : 0)
}

@_cdecl("cs_reader_header")
func readerHeader(_ raw: UnsafeMutableRawPointer?) -> PyObjectPointer? {
    let header = reader(raw).pointee.header
    return newDict { set in
        set("schema_version", PyLong_FromUnsignedLong(UInt(ArchiveHeader.schemaVersion)))
        set("python_hexversion", PyLong_FromUnsignedLong(UInt(header.identity.pythonHexVersion)))
        set("optimization_level", PyLong_FromUnsignedLong(UInt(header.identity.optimizationLevel)))
        set("debug_ranges", PyBool_FromLong(Int(header.identity.debugRanges)))
        set("created", PyLong_FromUnsignedLongLong(header.createdTime))
        set("file_size", PyLong_FromUnsignedLongLong(header.fileSize))
        set("module_count", PyLong_FromUnsignedLong(UInt(header.moduleCount)))
        set("chunk_count", PyLong_FromUnsignedLong(UInt(header.chunkCount)))
        set("loaded_together", PyBool_FromLong(header.loadedTogether ? 1 : 0))
        let version = header.identity.buildVersion
        withUnsafeBytes(of: version.bytes) {
            set("python_version", PyUnicode_DecodeUTF8($0.baseAddress!.assumingMemoryBound(to: CChar.self), version.count,
                                                       cString("replace")))
        }
    }
}

@_cdecl("cs_reader_stats")
func readerStats(_ raw: UnsafeMutableRawPointer?) -> PyObjectPointer? {
    let archive = reader(raw)
    let counters = archive.pointee.counters
    return newDict { set in
        set("modules_loaded", PyLong_FromSsize_t(counters.modulesLoaded))
        set("chunks_loaded", PyLong_FromSsize_t(archive.pointee.chunksLoaded))
        set("bytes_read", PyLong_FromSsize_t(archive.pointee.bytesRead))
        set("bytes_released", PyLong_FromSsize_t(counters.bytesReleased))
    }
}

/// ({type name: (count, bytes)}, {module name: segment bytes}, pool bytes).
@_cdecl("cs_reader_census")
func readerCensus(_ raw: UnsafeMutableRawPointer?, _ names: PyObjectPointer) -> PyObjectPointer? {
    let archive = reader(raw)
    let totals: InlineArray<8, ArchiveReader.TypeTotal>
    switch archive.pointee.census() {
    case .success(let counted): totals = counted
    case .failure(let error):
        raiseArchiveError(error)
        return nil
    }
    /// dict[key] = value, taking both references; on failure the dict goes
    /// (nil, with the error set).
    func put(_ key: PyObjectPointer?, _ value: PyObjectPointer?, in dict: inout PyObjectPointer?) {
        defer {
            if let key { cs_decref(key) }
            if let value { cs_decref(value) }
        }
        guard let current = dict else { return }
        if key == nil || value == nil || PyDict_SetItem(current, key, value) != 0 {
            cs_decref(current)
            dict = nil
        }
    }
    // Each type by the interpreter's name for it.
    var byType = PyDict_New()
    for type in TypeID.allCases where totals[Int(type.rawValue)].count > 0 {
        let total = totals[Int(type.rawValue)]
        put(PyUnicode_FromString(pythonType(type).pointee.tp_name),
            newTuple(PyLong_FromSsize_t(total.count), PyLong_FromSsize_t(total.bytes)), in: &byType)
    }
    var sizes = PyDict_New()
    for (index, record) in archive.pointee.modules.enumerated() {
        let name = PyList_GetItem(names, index)
        if let name { cs_incref(name) }
        put(name, PyLong_FromSsize_t(record.segment.length + Int(record.runOnceSize)), in: &sizes)
    }
    let pool = PyLong_FromSsize_t(archive.pointee.chunks.reduce(0) { $0 + $1.length })
    return newTuple(byType, sizes, pool)
}
