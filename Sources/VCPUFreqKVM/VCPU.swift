import Glibc

/// One vCPU of a `VirtualMachine`, with its own host thread. The thread is
/// created with the vCPU and idles until given a script, so its TID
/// (`threadID`) is known before any guest code runs: a VMM attaches it to the
/// vcpufreq daemon (scheduling hints target this thread) first, then runs.
/// The thread is named "vcpu N" (its `comm`).
public final class VCPU: @unchecked Sendable {
    /// The vCPU's index in its VM (its KVM vCPU id).
    public let index: Int
    /// Kernel TID of the host thread that runs this vCPU (`/proc/self/task/<tid>`).
    public let threadID: pid_t
    let worker: VCPUWorker

    init(worker: VCPUWorker) throws(KVMError) {
        try worker.startThread()
        self.worker = worker
        self.index = worker.index
        self.threadID = worker.lock.withLock { worker.threadID }
    }

    deinit { worker.shutdownAndJoin() }

    /// Exits since the vCPU was created, by kind and reason. Safe to read
    /// from any thread while a script runs.
    public var exitCounts: ExitCounts { worker.counters.snapshot() }

    /// Copies `script` into this vCPU's script area in guest RAM and hands it
    /// to the vCPU thread; returns at once. Pair with `wait(timeout:)`.
    /// - Throws: `KVMError.vcpuBusy` while a previous run is not collected,
    ///   `.invalidArgument` for a script the interpreter cannot hold.
    public func start(script: GuestScript) throws(KVMError) {
        let layout = worker.layout
        let ram = worker.ram
        try worker.lock.withLock { () throws(KVMError) in
            guard case .idle = worker.phase else { throw .vcpuBusy(vcpu: index) }
            guard let scriptOffset = ram.offset(of: layout.scriptAddress(index)),
                let resultsOffset = ram.offset(of: layout.resultsAddress(index))
            else { throw .invalidArgument("vCPU \(index) has no area in guest RAM") }
            let opCount = try GuestScriptABI.encode(
                script, into: ram.hostAddress + scriptOffset, capacity: GuestLayout.maximumScriptOps)
            (ram.hostAddress + resultsOffset).initializeMemory(
                as: UInt8.self, repeating: 0, count: GuestScriptABI.resultsHeaderSize)
            var registers = GuestRegisters()
            registers.rip = GuestLayout.codeAddress
            registers.rdi = layout.scriptAddress(index)
            registers.rsi = layout.resultsAddress(index)
            registers.rdx = GuestLayout.doneAddress
            registers.rcx = UInt64(opCount)
            registers.r8 = UInt64(index)
            registers.rsp = layout.stackTop(index)
            worker.clearStop()
            worker.phase = .pending(VCPUWorker.Job(registers: registers, resultCount: script.resultCount))
            worker.lock.broadcast()
        }
    }

    /// True once the run started with `start(script:)` has ended and waits
    /// for `wait` to collect it; false while it runs (or when none was started).
    public var hasFinishedRun: Bool {
        worker.lock.withLock {
            if case .finished = worker.phase { return true }
            return false
        }
    }

    /// Waits for the run started with `start(script:)` to end and collects it.
    /// When `timeout` passes first, the watchdog stops the vCPU (immediate_exit
    /// and a signal to its thread) and this throws `KVMError.timedOut`.
    public func wait(timeout: Duration = .seconds(10)) throws(KVMError) -> GuestRunResult {
        try wait(deadline: Self.deadline(after: timeout), timeout: timeout)
    }

    /// `start(script:)` then `wait(timeout:)`.
    public func run(script: GuestScript, timeout: Duration = .seconds(10)) throws(KVMError) -> GuestRunResult {
        try start(script: script)
        return try wait(timeout: timeout)
    }

    /// Measures what one iteration of the `spin` op costs on this vCPU: the
    /// time of `iterations` spins minus the time of an empty run.
    public func calibrateSpin(iterations: UInt64 = 50_000_000) throws(KVMError) -> SpinCalibration {
        let empty = try run(script: [.spin(iterations: 0)])
        let spun = try run(script: [.spin(iterations: iterations)])
        let nanoseconds = Self.nanoseconds(spun.duration) - Self.nanoseconds(empty.duration)
        return SpinCalibration(nanosecondsPerIteration: max(nanoseconds, 0) / Double(max(iterations, 1)))
    }

    static func nanoseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }

    static func deadline(after timeout: Duration) -> UInt64 {
        let nanoseconds = max(0, nanoseconds(timeout))
        return ConditionLock.monotonicNanoseconds() &+ UInt64(min(nanoseconds, 1e18))
    }

    func wait(deadline: UInt64, timeout: Duration) throws(KVMError) -> GuestRunResult {
        let lock = worker.lock
        let (job, end): (VCPUWorker.Job, VCPUWorker.RunEnd) = try lock.withLock { () throws(KVMError) in
            if case .idle = worker.phase { throw .vcpuIdle(vcpu: index) }
            var kicked = false
            while true {
                if case .finished(let job, let end) = worker.phase {
                    worker.phase = .idle
                    return (job, end)
                }
                if kicked {
                    lock.wait()
                } else if !lock.wait(untilMonotonicNanoseconds: deadline) {
                    if case .finished = worker.phase { continue }
                    worker.requestStop()
                    kicked = true
                }
            }
        }
        switch end {
        case .failed(let error):
            throw error
        case .stopped(let rip, let opIndex):
            throw .timedOut(vcpu: index, timeout: timeout, rip: rip, opIndex: opIndex)
        case .done(let rawStatus, let exits, let duration):
            let ram = worker.ram
            guard let offset = ram.offset(of: worker.layout.resultsAddress(index)) else {
                throw .invalidArgument("vCPU \(index) has no area in guest RAM")
            }
            let results = ram.hostAddress + offset
            let status = GuestScriptStatus(rawValue: rawStatus)
            guard status == .ended else {
                throw .scriptRejected(vcpu: index, status: status, opIndex: worker.completedOps())
            }
            let count = min(job.resultCount, GuestLayout.maximumScriptOps)
            return GuestRunResult(
                vcpu: index, results: GuestScriptABI.results(at: results, count: count), exits: exits,
                duration: duration)
        }
    }
}
