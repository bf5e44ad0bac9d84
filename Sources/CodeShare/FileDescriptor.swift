import CPythonShim

/// An errno value with a name, as the reader reports it.
struct Errno: Error, Equatable {
    let code: Int32

    static var current: Errno { Errno(code: cs_errno()) }
    static let interrupted = Errno(code: EINTR)
}

/// A thin owner of one file descriptor: the reader's only access to the
/// archive, and the writer's output. Reads are `pread` into private memory,
/// never `mmap`, so a file truncated under a running process gives a short
/// read (an error we report), not SIGBUS.
struct FileDescriptor {
    let raw: Int32

    static func openReadOnly(_ path: UnsafePointer<CChar>) -> Result<FileDescriptor, Errno> {
        while true {
            let fd = cs_open_read_only(path)
            if fd >= 0 { return .success(FileDescriptor(raw: fd)) }
            let error = Errno.current
            if error != .interrupted { return .failure(error) }
        }
    }

    /// Reads exactly `count` bytes at `offset`; a short file is `.truncated`.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: UInt64) -> Result<Void, ReadFailure> {
        var done = 0
        while done < count {
            let got = pread(raw, buffer + done, count - done, off_t(offset) + off_t(done))
            if got > 0 {
                done += got
            } else if got == 0 {
                return .failure(.truncated)
            } else {
                let error = Errno.current
                if error != .interrupted { return .failure(.errno(error)) }
            }
        }
        return .success(())
    }

    /// Writes all `count` bytes at `offset`.
    func write(from buffer: UnsafeRawPointer, count: Int, at offset: UInt64) -> Result<Void, Errno> {
        var done = 0
        while done < count {
            let wrote = pwrite(raw, buffer + done, count - done, off_t(offset) + off_t(done))
            if wrote > 0 {
                done += wrote
            } else if wrote == 0 {
                return .failure(Errno(code: EIO))
            } else {
                let error = Errno.current
                if error != .interrupted { return .failure(error) }
            }
        }
        return .success(())
    }

    /// The two ends of a new pipe, both closed on exec.
    static func pipe() -> Result<(read: FileDescriptor, write: FileDescriptor), Errno> {
        var ends: (Int32, Int32) = (-1, -1)
        let made = withUnsafeMutableBytes(of: &ends) { cs_pipe($0.baseAddress!.assumingMemoryBound(to: Int32.self)) }
        guard made == 0 else { return .failure(.current) }
        return .success((FileDescriptor(raw: ends.0), FileDescriptor(raw: ends.1)))
    }

    /// Reads a pipe until `buffer` is full or every writing end is closed;
    /// answers how many bytes came.
    func readUntilClosed(into buffer: UnsafeMutableRawBufferPointer) -> Result<Int, Errno> {
        var done = 0
        while done < buffer.count {
            let got = cs_read(raw, buffer.baseAddress! + done, buffer.count - done)
            if got > 0 {
                done += got
            } else if got == 0 {
                break
            } else {
                let error = Errno.current
                if error != .interrupted { return .failure(error) }
            }
        }
        return .success(done)
    }

    /// Writes all of `bytes` to a pipe.
    func write(_ bytes: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        var done = 0
        while done < bytes.count {
            let wrote = cs_write(raw, bytes.baseAddress! + done, bytes.count - done)
            if wrote >= 0 {
                done += wrote
            } else {
                let error = Errno.current
                if error != .interrupted { return .failure(error) }
            }
        }
        return .success(())
    }

    /// The same open file at the lowest free number at or above `floor`,
    /// this number closed; itself, still open, if there is none.
    func moved(atOrAbove floor: Int32) -> FileDescriptor {
        let moved = cs_duplicate_at_or_above(raw, floor)
        guard moved >= 0 else { return self }
        close()
        return FileDescriptor(raw: moved)
    }

    func close() { _ = cs_close(raw) }

    enum ReadFailure: Error {
        case truncated
        case errno(Errno)
    }
}
