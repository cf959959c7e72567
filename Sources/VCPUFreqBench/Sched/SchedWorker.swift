import Atomics
import Foundation
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

/// A thread of this process standing in for a vCPU or a host task in the
/// scheduler experiments: it reports its TID, optionally pins itself and
/// sets its nice value, waits for `start()`, then runs its body until
/// `stop()`. Its kernel-side accounting is read from outside
/// (`SchedStat.read`).
final class SchedWorker: @unchecked Sendable {
    enum Body: Sendable {
        /// Burns CPU without pause (a CPU hog).
        case spin
        /// Burns `burnNanoseconds` of CPU time, sleeps `sleepNanoseconds`, again.
        case burnAndSleep(burnNanoseconds: UInt64, sleepNanoseconds: UInt64)
        /// Wakes every `periodNanoseconds` (absolute deadlines), records how
        /// late it ran (wake-up delay, cyclictest's measure), works `workNanoseconds`.
        case periodic(periodNanoseconds: UInt64, workNanoseconds: UInt64)
    }

    let name: String
    private(set) var tid: Int32 = 0
    private let stopFlag = ManagedAtomic(false)
    private let started = DispatchSemaphore(value: 0)
    private let gate = DispatchSemaphore(value: 0)
    private let finished = DispatchSemaphore(value: 0)
    private var running = false
    /// Wake-up delays of a `.periodic` body, ns; read after `stop()`.
    private(set) var delays = LatencyHistogram()
    private(set) var failure: String?

    init(name: String, body: Body, cpus: CPUList? = nil, nice: Int32? = nil) {
        self.name = name
        let thread = Thread { [self] in
            tid = ThreadScheduling.currentThreadID()
            if let cpus {
                do { try ThreadScheduling.setAffinity(cpus, of: tid) } catch { failure = "affinity \(cpus): \(error)" }
            }
            if let nice {
                do { try ThreadScheduling.setNice(nice, of: tid) } catch { failure = "nice \(nice): \(error)" }
            }
            started.signal()
            gate.wait()
            run(body)
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 256 << 10
        thread.start()
        started.wait()
    }

    func start() {
        guard !running else { return }
        running = true
        gate.signal()
    }

    /// Ends the body (a started worker) and waits for it.
    func stop() {
        stopFlag.store(true, ordering: .relaxed)
        if !running { start() }
        finished.wait()
        finished.signal()  // a second stop() returns at once
    }

    deinit { stop() }

    private var stopping: Bool { stopFlag.load(ordering: .relaxed) }

    private func run(_ body: Body) {
        switch body {
        case .spin:
            var spins: UInt64 = 0
            while !stopping { spins &+= 1 }
        case .burnAndSleep(let burn, let sleep):
            while !stopping {
                Self.burn(nanoseconds: burn)
                Self.sleep(nanoseconds: sleep)
            }
        case .periodic(let period, let work):
            var deadline = Self.monotonic() + period
            while !stopping {
                Self.sleep(untilMonotonic: deadline)
                let now = Self.monotonic()
                delays.record(now > deadline ? now - deadline : 0)
                Self.burn(nanoseconds: work)
                deadline += period
                // Fell behind by a whole period (a long preemption): skip, as a timer would.
                let after = Self.monotonic()
                if deadline < after { deadline = after + period }
            }
        }
    }

    // MARK: Time

    static func monotonic() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    static func threadCPUTime() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// Spins until this thread has used `nanoseconds` more CPU time.
    static func burn(nanoseconds: UInt64) {
        let end = threadCPUTime() + nanoseconds
        while threadCPUTime() < end {}
    }

    static func sleep(nanoseconds: UInt64) {
        sleep(untilMonotonic: monotonic() + nanoseconds)
    }

    static func sleep(untilMonotonic deadline: UInt64) {
        var target = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &target, nil) == EINTR {}
    }
}

/// A thread's accounting as the kernel keeps it (/proc/<pid>/task/<tid>/schedstat):
/// time on CPU, time runnable waiting for a CPU, and runs.
struct SchedStat: Equatable, Sendable {
    var runtimeNanoseconds: UInt64
    var runDelayNanoseconds: UInt64
    var runs: UInt64

    static func read(tid: Int32, processID: Int32 = getpid()) -> SchedStat? {
        guard let text = ProcText.read("/proc/\(processID)/task/\(tid)/schedstat") else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { UInt64($0) }
        guard fields.count >= 3 else { return nil }
        return SchedStat(runtimeNanoseconds: fields[0], runDelayNanoseconds: fields[1], runs: fields[2])
    }

    func since(_ earlier: SchedStat) -> SchedStat {
        SchedStat(
            runtimeNanoseconds: runtimeNanoseconds &- earlier.runtimeNanoseconds,
            runDelayNanoseconds: runDelayNanoseconds &- earlier.runDelayNanoseconds, runs: runs &- earlier.runs)
    }

    /// Mean wait for a CPU per run, µs; nil without runs.
    var meanRunDelayMicroseconds: Double? {
        runs == 0 ? nil : Double(runDelayNanoseconds) / Double(runs) / 1000
    }
}
