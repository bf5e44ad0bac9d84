import CPythonShim

/// The read-ahead thread: prepares an archive's modules in archive order
/// (the order the program imported them at the dump) on another core while
/// the interpreter finishes starting up and then runs module bodies, so
/// that an import mostly finds its part ready and only fills the slots that
/// need the interpreter. It runs no Python code, holds no GIL and writes
/// nothing but the preparer's tables and the parts it claims
/// (PartPreparer); while it waits for the imports it faults in the pages of
/// the parts to come (FaultAhead), which changes nothing they hold.
/// Stopping it (the archive closes) waits for the part in hand, except as
/// the interpreter exits. A child forked meanwhile has no such thread; the
/// preparer redoes in the child a part the thread had claimed, and the
/// child closes the descriptor the thread was reading with (`ForkedChild`).
/// Plain values: the reader keeps one while the thread runs.
struct ReadAhead {
    /// How many modules the thread may get ahead of the imports: enough
    /// that an import rarely waits, few enough that memory holds only a
    /// little more than lazy loading would (prepared parts wait with their
    /// run-once objects and deferred-slot lists). boto3: 305 modules,
    /// 12.5 MB.
    static let window = 16
    /// Microseconds without a new import after which a waiting thread ends.
    static let patience = 2_000_000
    /// Archives smaller than this load faster on demand than a thread
    /// starts and stops (`-c pass` with 0.6 MB: 0.4 ms slower with it).
    static let minimumBytes = 2 << 20

    private struct Shared {
        let preparer: PartPreparer
        /// The modules the interpreter imports before the program, which
        /// it is importing as the thread starts: not the thread's.
        let after: Int
        /// Non-zero: stop before the next part.
        let stop: UnsafeMutablePointer<UInt32>
        /// The thread's file among those a forked child closes, if it is.
        let registration: Int?
    }

    private let shared: UnsafeMutablePointer<Shared>
    private let thread: pthread_t
    private let process: Int32

    private init(shared: UnsafeMutablePointer<Shared>, thread: pthread_t) {
        self.shared = shared
        self.thread = thread
        process = cs_process_id()
    }

    /// Starts the thread, or nil if it could not start (the imports then
    /// prepare their parts themselves).
    static func start(_ preparer: PartPreparer, after: Int) -> ReadAhead? {
        preparer.claimant.pointee = cs_process_id()
        guard let shared = checkedMemory(for: Shared.self, count: 1) else { return nil }
        guard let stop = checkedMemory(for: UInt32.self, count: 1) else {
            free(shared)
            return nil
        }
        let registration = ForkedChild.remember(preparer.file)
        shared.initialize(to: Shared(preparer: preparer, after: after, stop: stop, registration: registration))
        var thread = pthread_t()
        let body: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? = { argument in
            let shared = argument!.assumingMemoryBound(to: Shared.self)
            let preparer = shared.pointee.preparer
            var faultAhead = FaultAhead()
            defer {
                preparer.file.close(for: .readAhead)
                ForkedChild.forget(shared.pointee.registration)
            }
            let after = shared.pointee.after
            for module in after..<preparer.moduleCount {
                while true {
                    // Until the program's first import, a window from there.
                    let reached = Int(cs_load_ordered(preparer.progress))
                    if module < max(reached, after) + ReadAhead.window { break }
                    if cs_load_acquire(shared.pointee.stop) != 0 { return nil }
                    // Ahead of the imports: fault in pages to come rather
                    // than sleep, once the program imports (a child that
                    // inherited the archive may import nothing of it).
                    if reached > after, faultAhead.step(preparer, preparing: module) { continue }
                    // Asleep until the program's first import, then until
                    // the imports are half a window closer, the file closed
                    // meanwhile (the program may be running).
                    preparer.file.close(for: .readAhead)
                    cs_store_ordered(preparer.wakeAt, UInt32(reached > after ? module - ReadAhead.window / 2 + 1 : after + 1))
                    let timedOut = cs_wait_while_equal(preparer.progress, UInt32(reached), ReadAhead.patience) != 0
                    cs_store_ordered(preparer.wakeAt, 0)
                    // The imports have stopped (the program runs): later ones
                    // prepare their own parts.
                    if timedOut && Int(cs_load_ordered(preparer.progress)) == reached { return nil }
                }
                if cs_load_acquire(shared.pointee.stop) != 0 { break }
                preparer.prepareIfIdle(module, by: .readAhead)
            }
            return nil
        }
        guard cs_thread_start(&thread, body, shared) == 0 else {
            ForkedChild.forget(registration)
            free(stop)
            free(shared)
            return nil
        }
        return ReadAhead(shared: shared, thread: thread)
    }

    /// Asks the thread to stop after the part in hand without waiting for
    /// it; answers whether there was a thread to ask (not in a forked
    /// child). What the thread reads must then stay.
    func leave() -> Bool {
        guard cs_process_id() == process else { return false }
        askToStop()
        _ = cs_thread_detach(thread)
        return true
    }

    /// Asks the thread to stop after the part in hand and waits for it (in
    /// the process that started it: a forked child has no thread to join).
    func stop() {
        guard cs_process_id() == process else { return }
        askToStop()
        _ = cs_thread_join(thread)
        free(shared.pointee.stop)
        free(shared)
    }

    private func askToStop() {
        cs_store_release(shared.pointee.stop, 1)
        // Moving the progress wakes the thread if it sleeps on it.
        cs_store_ordered(shared.pointee.preparer.progress, UInt32.max)
        cs_wake_waiters(shared.pointee.preparer.progress)
    }
}

/// The files read-ahead threads read with, while they run. A child forked
/// while one read holds its descriptor but not the thread that would close
/// it: the child closes them all as it starts (pthread_atfork), so that it
/// has the descriptors it has under plain Python. Fork waits for the guard
/// ArchiveFile holds while it opens or closes, so the child finds each
/// descriptor in its slot. A slot's file is written before `inUse`
/// publishes it; the child runs alone and reads a snapshot.
private enum ForkedChild {
    static let capacity = 8
    static var files: UnsafeMutablePointer<ArchiveFile>? = nil
    static var inUse: UnsafeMutablePointer<UInt32>? = nil

    /// Notes `file` (from the interpreter's thread, holding the GIL);
    /// nil if every slot is taken or memory runs out (a child then keeps
    /// the descriptor).
    static func remember(_ file: ArchiveFile) -> Int? {
        if files == nil {
            // The slots first: a child forked once the handler is in reads them.
            guard let slots = checkedMemory(for: UInt32.self, count: capacity) else { return nil }
            guard let table = checkedMemory(for: ArchiveFile.self, count: capacity) else {
                free(slots)
                return nil
            }
            slots.initialize(repeating: 0, count: capacity)
            inUse = slots
            files = table
            let handler: @convention(c) () -> Void = {
                // Taken by fork in the parent; this thread is the child's only one.
                cs_fork_guard_unlock()
                ForkedChild.closeAll()
            }
            guard cs_at_fork(handler) == 0 else {
                free(table)
                free(slots)
                files = nil
                inUse = nil
                return nil
            }
        }
        for slot in 0..<capacity where cs_load_acquire(inUse! + slot) == 0 {
            (files! + slot).initialize(to: file)
            cs_store_release(inUse! + slot, 1)
            return slot
        }
        return nil
    }

    /// The thread of `slot` has closed its file for good.
    static func forget(_ slot: Int?) {
        if let slot { cs_store_release(inUse! + slot, 0) }
    }

    /// In a forked child: no read-ahead thread runs here.
    private static func closeAll() {
        for slot in 0..<capacity where cs_load_acquire(inUse! + slot) != 0 {
            files![slot].close(for: .readAhead)
            cs_store_release(inUse! + slot, 0)
        }
    }
}
