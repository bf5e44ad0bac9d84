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

/// Runs `work` in a child forked for it and answers the report it returned.
/// For work that may trap: a trap ends the child, and this process goes on
/// and says so. Call with the GIL held. The child is a copy of this thread
/// alone, holding the GIL, and may use any Python object; it runs none of the
/// program's Python at-fork hooks (this is fork, not os.fork), no handler of
/// the program's for a crash signal, and ends with _exit, so it flushes
/// nothing of the program's and runs none of its atexit functions. This
/// process releases the GIL while it waits.
func runInForkedChild<Report: BitwiseCopyable>(_ work: () -> Report) -> ChildOutcome<Report> {
    // A handler of the program's would run for the child's end, a signal
    // the program never caused (and a handler that reaps its own children
    // may raise at ECHILD).
    if cs_child_signal_handled() != 0 { return .notStarted }
    let ends: (read: FileDescriptor, write: FileDescriptor)
    switch FileDescriptor.pipe() {
    case .success(let made): ends = made
    case .failure: return .notStarted
    }
    let child = fork()
    if child == 0 {
        ends.read.close()
        cs_default_crash_signals()
        let report = work()
        _ = withUnsafeBytes(of: report) { ends.write.write($0) }
        _exit(0)
    }
    ends.write.close()
    defer { ends.read.close() }
    if child < 0 { return .notStarted }

    let waiting = PyEval_SaveThread()
    defer { PyEval_RestoreThread(waiting) }
    return withUnsafeTemporaryAllocation(of: Report.self, capacity: 1) { report in
        let received = ends.read.readUntilClosed(into: UnsafeMutableRawBufferPointer(report))
        var status: Int32 = 0
        // A program that ignores SIGCHLD has its children reaped for it
        // (ECHILD): then only the report tells.
        while waitpid(child, &status, 0) < 0 && Errno.current == .interrupted {}
        if case .success(MemoryLayout<Report>.size) = received {
            return .reported(UnsafeMutableRawBufferPointer(report).load(as: Report.self))
        }
        let signal = cs_ending_signal(status)
        return signal != 0 ? .killed(signal: signal) : .silent
    }
}
