import Foundation
import Glibc
import VCPUFreqBenchSupport

/// Where the CPUs' time went while a path was timed, from the kernel's own
/// accounting, so that a latency can be attributed: to the daemon's work,
/// to the daemon waiting for a CPU after its wake-up, to the vCPU thread
/// being kept off its CPU, or to load from outside the benchmark.
///
/// - `/proc/PID/task/TID/schedstat`: ns on the CPU, ns runnable but waiting
///   on a run queue (CONFIG_SCHED_INFO; exact, per thread).
/// - `/proc/stat` (all CPUs) and `/proc/PID/stat` (our process, the
///   daemon): busy and steal time in clock ticks (USER_HZ, 10 ms here), so
///   only meaningful over a loop of a second or more.
struct HostAccounting {
    typealias ThreadTime = ProcessAccounting.ThreadTime

    /// One reading of everything.
    struct Snapshot {
        var wallNanoseconds: UInt64
        var daemon: ThreadTime
        var vcpu: ThreadTime
        /// All CPUs, clock ticks.
        var busyTicks: UInt64
        var stealTicks: UInt64
        /// This process and the daemon process, clock ticks (user + system).
        var ownTicks: UInt64
    }

    let daemonPID: Int32?
    let vcpuThread: Int32
    let cpuCount: Int

    func snapshot() -> Snapshot {
        var daemon = ThreadTime()
        var ownTicks = Self.processTicks("/proc/self/stat")
        if let daemonPID {
            for tid in ProcessAccounting.threads(of: daemonPID) {
                let time = Self.threadTime("/proc/\(daemonPID)/task/\(tid)/schedstat")
                daemon.runNanoseconds &+= time.runNanoseconds
                daemon.waitNanoseconds &+= time.waitNanoseconds
            }
            ownTicks &+= Self.processTicks("/proc/\(daemonPID)/stat")
        }
        let (busy, steal) = Self.systemTicks()
        return Snapshot(
            wallNanoseconds: ProcessAccounting.monotonicNanoseconds(), daemon: daemon,
            vcpu: Self.threadTime("/proc/self/task/\(vcpuThread)/schedstat"), busyTicks: busy, stealTicks: steal,
            ownTicks: ownTicks)
    }

    /// What happened between two snapshots; deltas of several loops add up.
    struct Delta {
        var wallNanoseconds: UInt64 = 0
        var daemon = ThreadTime()
        var vcpu = ThreadTime()
        var busyTicks: UInt64 = 0
        var stealTicks: UInt64 = 0
        var ownTicks: UInt64 = 0

        static func += (total: inout Delta, more: Delta) {
            total.wallNanoseconds &+= more.wallNanoseconds
            total.daemon.runNanoseconds &+= more.daemon.runNanoseconds
            total.daemon.waitNanoseconds &+= more.daemon.waitNanoseconds
            total.vcpu.runNanoseconds &+= more.vcpu.runNanoseconds
            total.vcpu.waitNanoseconds &+= more.vcpu.waitNanoseconds
            total.busyTicks &+= more.busyTicks
            total.stealTicks &+= more.stealTicks
            total.ownTicks &+= more.ownTicks
        }

        /// Per request, and the shares of the CPUs over the loops' wall time.
        func perRequest(_ requests: Int, cpuCount: Int) -> RequestResult.Accounting {
            let n = Double(max(requests, 1))
            let hz = Double(max(sysconf(Int32(_SC_CLK_TCK)), 1))
            let capacity = max(Double(wallNanoseconds) / 1e9 * Double(max(cpuCount, 1)), 1e-9)
            let other = (Double(busyTicks) - Double(ownTicks)) / hz
            return RequestResult.Accounting(
                daemonCPUMicrosecondsPerRequest: Double(daemon.runNanoseconds) / 1000 / n,
                daemonRunQueueMicrosecondsPerRequest: Double(daemon.waitNanoseconds) / 1000 / n,
                vcpuRunQueueMicrosecondsPerRequest: Double(vcpu.waitNanoseconds) / 1000 / n,
                otherLoadShare: min(max(other / capacity, 0), 1),
                stealShare: min(max(Double(stealTicks) / hz / capacity, 0), 1))
        }
    }

    func difference(_ before: Snapshot, _ after: Snapshot) -> Delta {
        Delta(
            wallNanoseconds: after.wallNanoseconds &- before.wallNanoseconds, daemon: after.daemon - before.daemon,
            vcpu: after.vcpu - before.vcpu, busyTicks: after.busyTicks &- before.busyTicks,
            stealTicks: after.stealTicks &- before.stealTicks, ownTicks: after.ownTicks &- before.ownTicks)
    }

    static func threadTime(_ path: String) -> ThreadTime { ProcessAccounting.threadTime(path) }
    static func processTicks(_ path: String) -> UInt64 { ProcessAccounting.processTicks(path) }
    static func systemTicks() -> (UInt64, UInt64) {
        let ticks = ProcessAccounting.systemTicks()
        return (ticks.busy, ticks.steal)
    }
}
