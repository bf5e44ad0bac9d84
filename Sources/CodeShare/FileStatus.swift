import CPythonShim

/// What stat(2) says about a source file that tells whether it changed
/// since the dump: the two fields importlib compares a .pyc against.
struct FileStatus: Equatable {
    let size: Int64
    let mtimeNanoseconds: Int64   // as os.stat's st_mtime_ns

    /// The status of the file at `path`, following symlinks as os.stat does.
    static func of(_ path: UnsafePointer<CChar>) -> Result<FileStatus, Errno> {
        var size: Int64 = 0, mtime: Int64 = 0
        if cs_path_size_and_mtime(path, &size, &mtime) != 0 { return .failure(.current) }
        return .success(FileStatus(size: size, mtimeNanoseconds: mtime))
    }
}
