import CPythonShim
import CodeShareFormat

extension InterpreterIdentity {
    /// The running interpreter, as an archive header records it; allocates
    /// nothing (an archive may be opened when memory is short).
    static func running() -> InterpreterIdentity {
        let version = Py_GetVersion()!
        return InterpreterIdentity(
            pythonHexVersion: UInt32(Py_Version),
            pycMagic: UInt32(truncatingIfNeeded: PyImport_GetMagicNumber()),
            optimizationLevel: UInt32(bitPattern: cs_optimization_level()),
            debugRanges: UInt32(bitPattern: cs_code_debug_ranges()),
            layoutFingerprint: layoutFingerprint,
            buildVersion: BuildVersion(UnsafeRawBufferPointer(start: version, count: strlen(version))))
    }

    /// Every layout constant the archive relies on, hashed: archives written
    /// against another layout are refused even if the version matches.
    private static var layoutFingerprint: UInt64 {
        let facts = (
            Int64(CS_GC_HEAD_SIZE), Int64(CS_CODE_BASIC_SIZE), Int64(CS_CODE_CONSTS),
            Int64(CS_CODE_WARMUP), Int64(CS_CODE_LOCALSPLUSNAMES), Int64(CS_CODE_LINETABLE),
            Int64(CS_CODE_EXTRA), Int64(CS_CODE_INITIAL_WARMUP), Int64(CS_TUPLE_ITEMS),
            Int64(CS_BYTES_DATA), Int64(CS_LONG_DIGITS), Int64(CS_FLOAT_VALUE),
            Int64(CS_COMPLEX_IMAG), Int64(CS_ASCII_HEADER_SIZE), Int64(CS_COMPACT_HEADER_SIZE),
            Int64(CS_STR_STATE_READY))
        return withUnsafeBytes(of: facts) { Checksum.of($0.baseAddress!, count: $0.count) }
    }
}
