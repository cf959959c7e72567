import VCPUFreqCore
import Glibc
import Logging
import Synchronization

/// Everything a vCPU's host thread needs, retained by that thread for its
/// whole life. The thread idles on `lock` until given a job, runs the KVM exit
/// loop, publishes the outcome, and idles again; it exits on `shutdown`.
final class VCPUWorker: @unchecked Sendable {
    /// A script run, ready to start: the entry registers and how many result
    /// records the script produces.
    struct Job {
        var registers: GuestRegisters
        var resultCount: Int
    }

    /// How a run ended, as the vCPU thread saw it.
    enum RunEnd {
        /// The interpreter wrote `status` to the DONE address.
        case done(status: UInt32, exits: ExitCounts, duration: Duration)
        /// The watchdog stopped the vCPU at `rip` during op `opIndex`.
        case stopped(rip: UInt64, opIndex: Int)
        case failed(KVMError)
    }

    /// Every state of the worker (guarded by `lock`).
    enum Phase {
        /// No run started; `start` may give a job.
        case idle
        /// A job waits for the thread to pick it up.
        case pending(Job)
        /// The thread is in the exit loop for `job`.
        case running(Job)
        /// The run ended; `wait` takes the outcome and returns to idle.
        case finished(Job, RunEnd)
    }

    let index: Int
    let fd: Int32
    let resources: VMResources
    let layout: GuestLayout
    let ram: GuestMemoryRegion
    let handler: any MMIOHandler
    let logger: Logger
    let counters = ExitCounters()
    let lock = ConditionLock()
    /// Set by the watchdog (with immediate_exit and a signal): the exit loop
    /// ends the run the next time KVM_RUN returns -EINTR.
    let stopRequested = Atomic<Bool>(false)

    private let run: UnsafeMutableRawPointer
    private let runSize: Int
    // Guarded by `lock`.
    var phase = Phase.idle
    var shutdown = false
    var threadID: pid_t = 0
    var thread = pthread_t()

    init(
        index: Int, resources: VMResources, layout: GuestLayout, ram: GuestMemoryRegion,
        handler: any MMIOHandler, logger: Logger
    ) throws(KVMError) {
        self.index = index
        self.resources = resources
        self.layout = layout
        self.ram = ram
        self.handler = handler
        self.logger = logger
        let system = resources.system
        let fd = try KVMCall.createVCPU(vm: resources.fd, id: UInt32(index))
        let runSize = system.vcpuMmapSize
        let mapped = mmap(nil, runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
        guard let mapped, mapped != MAP_FAILED else {
            let error = errno
            KVMCall.close(fd)
            throw .systemCall(operation: "mmap kvm_run", errno: .init(rawValue: error))
        }
        self.fd = fd
        self.run = mapped
        self.runSize = runSize
        try KVMCall.setSupportedCPUID(kvm: system.fd, vcpu: fd)
        try KVMCall.enterUserLongMode(vcpu: fd, pageTableRoot: GuestLayout.pml4Address)
    }

    deinit {
        munmap(run, runSize)
        KVMCall.close(fd)
    }

    // MARK: Thread

    /// Starts the host thread and waits until it reports its TID.
    func startThread() throws(KVMError) {
        _ = KVMCall.kickSignal  // install the watchdog's handler before any kick
        let context = Unmanaged.passRetained(self).toOpaque()
        var thread = pthread_t()
        let result = pthread_create(&thread, nil, { context in
            let worker = Unmanaged<VCPUWorker>.fromOpaque(context!).takeRetainedValue()
            worker.threadMain()
            return nil
        }, context)
        guard result == 0 else {
            Unmanaged<VCPUWorker>.fromOpaque(context).release()
            throw .systemCall(operation: "pthread_create", errno: .init(rawValue: result))
        }
        lock.withLock {
            self.thread = thread
            while threadID == 0 { lock.wait() }
        }
    }

    private func threadMain() {
        KVMCall.unblockKickSignal()
        KVMCall.setCurrentThreadName("vcpu \(index)")
        // An idle store sleeps until the guest's timer would fire; the default
        // 50 µs of slack would make every guest wake-up that much late.
        KVMCall.setCurrentTimerSlack(nanoseconds: 1)
        lock.withLock {
            threadID = KVMCall.currentThreadID()
            lock.broadcast()
        }
        while true {
            lock.lock()
            while !shutdown, !phase.isPending { lock.wait() }
            guard !shutdown, case .pending(let job) = phase else {
                lock.unlock()
                return
            }
            phase = .running(job)
            lock.unlock()
            let end = execute(job)
            lock.withLock {
                phase = .finished(job, end)
                lock.broadcast()
            }
        }
    }

    /// Asks the thread to exit (stopping a run in progress) and joins it.
    func shutdownAndJoin() {
        let thread = lock.withLock {
            shutdown = true
            if case .running = phase { requestStop() }
            lock.broadcast()
            return self.thread
        }
        pthread_join(thread, nil)
    }

    /// Pulls the vCPU out of KVM_RUN: immediate_exit covers a thread about to
    /// enter KVM_RUN, the signal one already inside it.
    func requestStop() {
        stopRequested.store(true, ordering: .releasing)
        KVMCall.setImmediateExit(run, true)
        KVMCall.kick(thread)
    }

    /// Clears a previous run's stop request. Call before publishing a job.
    func clearStop() {
        stopRequested.store(false, ordering: .releasing)
        KVMCall.setImmediateExit(run, false)
    }

    // MARK: One run

    private func execute(_ job: Job) -> RunEnd {
        do {
            // Fresh control registers every run: a crashed guest may have left anything.
            try KVMCall.enterUserLongMode(vcpu: fd, pageTableRoot: GuestLayout.pml4Address)
            try KVMCall.setRegisters(vcpu: fd, job.registers)
        } catch {
            return .failed(error)
        }
        let before = counters.snapshot()
        let clock = ContinuousClock()
        let started = clock.now
        let end = exitLoop(handler)  // opens the existential once per run
        let duration = clock.now - started
        let result: RunEnd
        switch end {
        case .done(let status):
            result = .done(status: status, exits: counters.snapshot() - before, duration: duration)
        case .stopped:
            result = .stopped(rip: currentRIP(), opIndex: completedOps())
        case .unexpected(let reason, let detail):
            let error = KVMError.unexpectedExit(
                vcpu: index, reason: reason, rip: currentRIP(), opIndex: completedOps(), detail: detail)
            logger.warning("\(error)")
            result = .failed(error)
        case .failed(let error):
            result = .failed(error)
        }
        quiesce()
        return result
    }

    private enum LoopEnd {
        case done(status: UInt32)
        case stopped
        case unexpected(KVMExitReason, detail: [UInt64])
        case failed(KVMError)
    }

    /// The hot loop: one KVM_RUN per exit, one direct call into the handler,
    /// no allocation until the run ends.
    private func exitLoop<Handler: MMIOHandler>(_ handler: Handler) -> LoopEnd {
        let doneMask = ~(GuestLayout.pageSize - 1)
        let maximumIdle = UInt64(VCPU.nanoseconds(GuestLayout.maximumIdle))
        while true {
            let result = KVMCall.run(vcpu: fd)
            if result < 0 {
                if result == -EINTR {
                    counters.countOther(KVMExitReason.interrupted.rawValue)
                    if stopRequested.load(ordering: .acquiring) { return .stopped }
                    continue
                }
                if result == -EAGAIN { continue }
                return .failed(.systemCall(operation: "KVM_RUN", errno: .init(rawValue: -result)))
            }
            let reason = KVMCall.exitReason(run)
            switch reason {
            case KVMExitReason.mmio.rawValue:
                let access = KVMCall.mmio(run)
                if access.isWrite, access.guestPhysicalAddress & doneMask == GuestLayout.doneAddress {
                    return .done(status: UInt32(truncatingIfNeeded: access.data))
                }
                if access.isWrite, access.guestPhysicalAddress & doneMask == GuestLayout.idleAddress {
                    if idle(nanoseconds: min(access.data, maximumIdle)) { return .stopped }
                    continue
                }
                counters.countMMIO(write: access.isWrite)
                if access.isWrite {
                    handler.write(
                        vcpu: index, gpa: access.guestPhysicalAddress, width: access.width, value: access.data)
                } else {
                    let value = handler.read(vcpu: index, gpa: access.guestPhysicalAddress, width: access.width)
                    KVMCall.setMMIOData(run, value)
                }
            case KVMExitReason.io.rawValue:
                counters.countIO()
                let io = KVMCall.portIO(run)
                for access in 0..<io.count {
                    if io.isOut {
                        let value = KVMCall.portData(run, runSize: runSize, index: access) ?? 0
                        handler.portWrite(vcpu: index, port: io.port, width: io.width, value: value)
                    } else {
                        let value = handler.portRead(vcpu: index, port: io.port, width: io.width)
                        KVMCall.setPortData(run, runSize: runSize, index: access, value)
                    }
                }
            default:
                counters.countOther(reason)
                return .unexpected(KVMExitReason(rawValue: reason), detail: KVMCall.exitDetail(run))
            }
        }
    }

    /// The guest's idle store: sleep `nanoseconds` from now (CLOCK_MONOTONIC,
    /// absolute, so an interrupted sleep resumes toward the same time).
    /// Returns true when the watchdog asked to stop meanwhile.
    private func idle(nanoseconds: UInt64) -> Bool {
        let start = ConditionLock.monotonicNanoseconds()
        let deadline = start &+ nanoseconds
        var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &time, nil) == EINTR {
            if stopRequested.load(ordering: .acquiring) { break }
        }
        counters.countIdle(nanoseconds: ConditionLock.monotonicNanoseconds() &- start)
        return stopRequested.load(ordering: .acquiring)
    }

    /// Lets KVM finish the instruction of the last exit (the DONE write) with
    /// immediate_exit set, so the next run starts from a clean vCPU.
    private func quiesce() {
        KVMCall.setImmediateExit(run, true)
        _ = KVMCall.run(vcpu: fd)
        KVMCall.setImmediateExit(run, false)
    }

    private func currentRIP() -> UInt64 { (try? KVMCall.getRegisters(vcpu: fd).rip) ?? 0 }

    /// Ops the interpreter finished, from the results header in guest RAM.
    /// The guest writes that word, so it is clamped to what a script can hold.
    func completedOps() -> Int {
        guard let offset = ram.offset(of: layout.resultsAddress(index)) else { return 0 }
        let completed = GuestScriptABI.header(at: ram.hostAddress + offset).completed
        return Int(min(completed, UInt64(GuestLayout.maximumScriptOps)))
    }
}

extension VCPUWorker.Phase {
    var isPending: Bool {
        if case .pending = self { return true }
        return false
    }
}
