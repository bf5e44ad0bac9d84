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
        switch FileDescriptor.transfer(count, { done in pread(raw, buffer + done, count - done, off_t(offset) + off_t(done)) }) {
        case .success(let done): return done == count ? .success(()) : .failure(.truncated)
        case .failure(let error): return .failure(.errno(error))
        }
    }

    /// Writes all `count` bytes at `offset`.
    func write(from buffer: UnsafeRawPointer, count: Int, at offset: UInt64) -> Result<Void, Errno> {
        FileDescriptor.transfer(count, { done in pwrite(raw, buffer + done, count - done, off_t(offset) + off_t(done)) })
            .flatMap { $0 == count ? .success(()) : .failure(Errno(code: EIO)) }
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
        FileDescriptor.transfer(buffer.count, { done in cs_read(raw, buffer.baseAddress! + done, buffer.count - done) })
    }

    /// Reads a pipe until every writing end is closed, into memory of
    /// malloc's that the caller frees; nil on an error or out of memory.
    func readAll() -> UnsafeMutableRawBufferPointer? {
        var memory: UnsafeMutableRawPointer? = nil
        var capacity = 0, count = 0
        while true {
            if count == capacity {
                capacity = max(2 * capacity, 64 * 1024)
                guard let grown = realloc(memory, capacity) else { break }
                memory = grown
            }
            switch FileDescriptor.transfer(capacity - count, { done in cs_read(raw, memory! + count + done, capacity - count - done) }) {
            case .success(let moved) where moved == capacity - count:
                count += moved
            case .success(let moved):
                return UnsafeMutableRawBufferPointer(start: memory, count: count + moved)
            case .failure:
                free(memory)
                return nil
            }
        }
        free(memory)
        return nil
    }

    /// Writes all of `bytes` to a pipe.
    func write(_ bytes: UnsafeRawBufferPointer) -> Result<Void, Errno> {
        FileDescriptor.transfer(bytes.count, { done in cs_write(raw, bytes.baseAddress! + done, bytes.count - done) })
            .flatMap { $0 == bytes.count ? .success(()) : .failure(Errno(code: EIO)) }
    }

    /// Repeats `step(done)`, a read or write of the rest that answers the
    /// bytes it moved (0 at the end of the file, -1 with errno set), until
    /// `count` bytes have moved or the end comes; retries what a signal
    /// interrupted. Answers the bytes moved.
    @inline(__always)
    private static func transfer(_ count: Int, _ step: (_ done: Int) -> Int) -> Result<Int, Errno> {
        var done = 0
        while done < count {
            let moved = step(done)
            if moved > 0 {
                done += moved
            } else if moved == 0 {
                break
            } else {
                let error = Errno.current
                if error != .interrupted { return .failure(error) }
            }
        }
        return .success(done)
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
