import CPythonShim
import CodeShareFormat

/// The archive's file, open only while a worker reads from it. A program
/// that lists or closes its descriptors (a daemon's closerange, a test of
/// pass_fds) sees none of codeshare's between imports once the read-ahead
/// thread is a window ahead, and its own opens get the numbers they get
/// under plain Python (`readAheadFloor`). Each worker opens the file
/// on its first read and keeps it for the rest of its burst: the
/// interpreter until its `code()` call returns, the read-ahead thread
/// until it sleeps (a window ahead of the imports) or ends; the hook's
/// start-up reads, from the tables to its own modules, share one open
/// (ArchiveReader.open's `keepOpen`). Every open
/// checks that the path still names the file the tables were read from: a
/// part of an archive replaced since (a new dump) is refused, never mixed
/// with the tables of the old one. Plain values and raw memory, shared by
/// copy with the read-ahead thread; each worker touches only its own
/// descriptor. Opening and closing hold the fork guard (shim.c), so that a
/// child forked meanwhile finds each descriptor it has in its slot.
struct ArchiveFile {
    /// What tells the file apart from any other at the same path.
    struct Identity: Equatable {
        /// Only a regular file is read: a FIFO, a device or a directory
        /// is refused as it is opened.
        let regularFile: Bool
        let device: UInt64
        let inode: UInt64
        let size: UInt64
        let mtimeNanoseconds: Int64

        static func of(_ file: FileDescriptor) -> Result<Identity, Errno> {
            var regular: Int32 = 0, device: UInt64 = 0, inode: UInt64 = 0, size: UInt64 = 0, mtime: Int64 = 0
            if cs_file_identity(file.raw, &regular, &device, &inode, &size, &mtime) != 0 { return .failure(.current) }
            return .success(Identity(regularFile: regular != 0, device: device, inode: inode, size: size,
                                     mtimeNanoseconds: mtime))
        }
    }

    /// Where the read-ahead thread's descriptor goes once open. That thread
    /// reads while the program runs, and a descriptor it held at the lowest
    /// free number would give a file the program opens meanwhile the next
    /// number instead of the one plain Python gives. The interpreter's
    /// thread reads only inside an import, holding the GIL, and keeps the
    /// number open() gives it. Below 64, the descriptors a process's table
    /// holds before it first grows: growing the table while another thread
    /// runs waits for an RCU grace period (9-19 ms measured here), and
    /// stalls the other thread's opens meanwhile.
    static let readAheadFloor: Int32 = 63

    let identity: Identity
    private let path: UnsafeMutablePointer<CChar>
    /// Each worker's descriptor (PartPreparer.Worker's raw value), -1 while closed.
    private let descriptors: UnsafeMutablePointer<Int32>

    /// The file at `path`, which `identity` describes (the caller read its
    /// tables). A relative path is taken from the working directory now:
    /// the program may change directory between bursts of reads. Nil when
    /// memory runs out.
    init?(path: UnsafePointer<CChar>, identity: Identity) {
        let absolute = ArchiveFile.absolute(path)
        let descriptors = checkedMemory(for: Int32.self, count: 2)
        guard let absolute, let descriptors else {
            free(absolute)
            free(descriptors)
            return nil
        }
        self.path = absolute
        self.identity = identity
        self.descriptors = descriptors
        descriptors.initialize(repeating: -1, count: 2)
    }

    /// Makes `file`, through which the caller has just read this archive's
    /// tables, the interpreter's descriptor, as if its first read had opened
    /// it (ArchiveReader.open's `keepOpen`).
    func adopt(_ file: FileDescriptor) {
        cs_fork_guard_lock()
        defer { cs_fork_guard_unlock() }
        descriptors[PartPreparer.Worker.interpreter.rawValue] = file.raw
    }

    /// Reads exactly `count` bytes at `offset` with `worker`'s descriptor,
    /// opening the file first if that worker has it closed.
    func read(into buffer: UnsafeMutableRawPointer, count: Int, at offset: UInt64,
              by worker: PartPreparer.Worker) -> ArchiveError? {
        let slot = descriptors + worker.rawValue
        if slot.pointee < 0 {
            cs_fork_guard_lock()
            defer { cs_fork_guard_unlock() }
            switch FileDescriptor.openReadOnly(path) {
            case .failure(let error):
                return .io(errno: error.code)
            case .success(let opened):
                guard case .success(let current) = Identity.of(opened), current == identity else {
                    opened.close()
                    return .replaced
                }
                slot.pointee = worker == .readAhead ? opened.moved(atOrAbove: ArchiveFile.readAheadFloor).raw : opened.raw
            }
        }
        if case .failure(let failure) = FileDescriptor(raw: slot.pointee).read(into: buffer, count: count, at: offset) {
            return ArchiveError(failure)
        }
        return nil
    }

    /// Ends `worker`'s burst of reads. A descriptor that names another
    /// file (device and inode) is left alone: the program closed ours (a
    /// closerange while the read-ahead thread read) and the number is its
    /// file's now.
    func close(for worker: PartPreparer.Worker) {
        let slot = descriptors + worker.rawValue
        if slot.pointee >= 0 {
            cs_fork_guard_lock()
            defer { cs_fork_guard_unlock() }
            let file = FileDescriptor(raw: slot.pointee)
            if case .success(let current) = Identity.of(file),
               current.device == identity.device, current.inode == identity.inode {
                file.close()
            }
            slot.pointee = -1
        }
    }

    /// A copy of `path`, after the working directory if it is relative (as
    /// given if the working directory has no name any more); nil when
    /// memory runs out.
    private static func absolute(_ path: UnsafePointer<CChar>) -> UnsafeMutablePointer<CChar>? {
        let directory = path.pointee == CChar(UInt8(ascii: "/")) ? nil : getcwd(nil, 0)
        defer { free(directory) }
        let prefix = directory.map { strlen($0) + 1 } ?? 0
        let length = strlen(path) + 1
        guard let result = checkedMemory(for: CChar.self, count: prefix + length) else { return nil }
        if let directory {
            result.initialize(from: directory, count: prefix - 1)
            result[prefix - 1] = CChar(UInt8(ascii: "/"))
        }
        (result + prefix).initialize(from: path, count: length)
        return result
    }

    /// Closes what is open and frees the path; no worker may read any more.
    func deallocate() {
        close(for: .interpreter)
        close(for: .readAhead)
        free(descriptors)
        free(path)
    }
}

extension ArchiveError {
    /// What a failed read of the archive file means for the archive.
    init(_ failure: FileDescriptor.ReadFailure) {
        switch failure {
        case .truncated: self = .truncated
        case .errno(let error): self = .io(errno: error.code)
        }
    }
}
