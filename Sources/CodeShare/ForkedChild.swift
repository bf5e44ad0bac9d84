import CPythonShim

/// How a child forked by `runInForkedChild` ended.
enum ChildOutcome<Report> {
    /// It sent its whole report (whatever ended it after that).
    case reported(Report)
    /// A signal ended it before its report was whole: SIGILL is a trap of
    /// Embedded Swift's, which is how a failed malloc ends an array's growth.
    case killed(signal: Int32)
    /// It exited without a whole report.
    case silent
    /// No child was started: the program handles SIGCHLD, or making the
    /// pipe or forking failed.
    case notStarted
}

/// A child forked to run `work`, which writes its report to the pipe it is
/// given, and the read end of that pipe; nil where no child was started.
/// The child is a copy of this thread alone, holding the GIL if this
/// thread holds it, and may use any Python object; it runs none of the
/// program's Python at-fork hooks (this is fork, not os.fork), no handler of
/// the program's for a crash signal, and ends with _exit, so it flushes
/// nothing of the program's and runs none of its atexit functions.
private func forkChild(_ work: (_ report: FileDescriptor) -> Void) -> (child: pid_t, report: FileDescriptor)? {
    // A handler of the program's would run for the child's end, a signal
    // the program never caused (and a handler that reaps its own children
    // may raise at ECHILD).
    if cs_child_signal_handled() != 0 { return nil }
    let ends: (read: FileDescriptor, write: FileDescriptor)
    switch FileDescriptor.pipe() {
    case .success(let made): ends = made
    case .failure: return nil
    }
    let child = fork()
    if child == 0 {
        ends.read.close()
        cs_default_crash_signals()
        work(ends.write)
        _exit(0)
    }
    ends.write.close()
    if child < 0 {
        ends.read.close()
        return nil
    }
    return (child, ends.read)
}

/// Waits for `child` to end; answers its wait status, or nil if the program
/// ignores SIGCHLD (the child was reaped for it: ECHILD).
private func waitForEnd(of child: pid_t) -> Int32? {
    var status: Int32 = 0
    while waitpid(child, &status, 0) < 0 {
        if Errno.current != .interrupted { return nil }
    }
    return status
}

/// Runs `work` in a child forked for it and answers the report it returned.
/// For work that may trap: a trap ends the child, and this process goes on
/// and says so. Call with the GIL held; this process releases it while it
/// waits.
func runInForkedChild<Report: BitwiseCopyable>(_ work: () -> Report) -> ChildOutcome<Report> {
    let started = forkChild { report in
        _ = withUnsafeBytes(of: work()) { report.write($0) }
    }
    guard let (child, report) = started else { return .notStarted }
    defer { report.close() }
    let waiting = PyEval_SaveThread()
    defer { PyEval_RestoreThread(waiting) }
    return withUnsafeTemporaryAllocation(of: Report.self, capacity: 1) { received in
        let count = report.readUntilClosed(into: UnsafeMutableRawBufferPointer(received))
        let status = waitForEnd(of: child) ?? 0
        // Only the report tells whether it came whole.
        if case .success(MemoryLayout<Report>.size) = count {
            return .reported(UnsafeMutableRawBufferPointer(received).load(as: Report.self))
        }
        let signal = cs_ending_signal(status)
        return signal != 0 ? .killed(signal: signal) : .silent
    }
}

/// Children forked to each run a share of some work while this process runs
/// its own share: each child's report is a byte string of any length,
/// which this process takes once its own share is done.
struct ForkedShares {
    private let children: UnsafeMutablePointer<(child: pid_t, report: FileDescriptor)?>

    /// Forks `count` children, child `share` (from 1) running
    /// `work(share, report)`, which writes its report through
    /// `ForkedShares.send`. None is started where another thread has a
    /// Python thread state: it may hold a lock of the interpreter's (the
    /// GIL's own, an import's) that the child, a copy of this thread alone,
    /// would then wait on for ever; nor where the program handles SIGCHLD
    /// (`forkChild`). Nil when out of memory.
    static func start(count: Int, _ work: (_ share: Int, _ report: FileDescriptor) -> Void) -> ForkedShares? {
        guard let children = checkedMemory(for: (child: pid_t, report: FileDescriptor)?.self, count: max(count, 1)) else {
            return nil
        }
        children.initialize(repeating: nil, count: max(count, 1))
        if cs_only_thread_state() != 0 {
            for share in 0..<count {
                children[share] = forkChild { report in work(share + 1, report) }
            }
        }
        return ForkedShares(children: children)
    }

    /// Sends `bytes` as a child's whole report: its length, then the bytes.
    static func send(_ bytes: UnsafeRawBufferPointer, to report: FileDescriptor) {
        guard case .success = withUnsafeBytes(of: UInt64(bytes.count).littleEndian, { report.write($0) }) else { return }
        _ = report.write(bytes)
    }

    /// The report of the child of `share` (from 1) as `make` turns it into
    /// a result, nil if it started none or its report did not come whole;
    /// waits for the child to end. Call once per share, with the GIL held:
    /// it is released while this waits.
    func report<Result>(of share: Int, _ make: (UnsafeRawBufferPointer) -> Result?) -> Result? {
        guard let (child, report) = children[share - 1] else { return nil }
        defer { report.close() }
        let waiting = PyEval_SaveThread()
        let received = report.readAll()
        _ = waitForEnd(of: child)
        PyEval_RestoreThread(waiting)
        guard let received else { return nil }
        defer { CPythonShim.free(received.baseAddress) }
        guard received.count >= 8 else { return nil }
        let length = UInt64(littleEndian: received.loadUnaligned(as: UInt64.self))
        guard length == UInt64(received.count - 8) else { return nil }
        return make(UnsafeRawBufferPointer(rebasing: received[8...]))
    }

    /// Its own memory, once every share's report was taken.
    func deallocate() { CPythonShim.free(children) }
}
