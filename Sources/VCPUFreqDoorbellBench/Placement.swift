import Foundation
import SystemPackage
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

/// Where the benchmark runs the vCPU threads and the daemon. On a 2-core
/// machine this decides what a kick costs: waking a daemon that sleeps on
/// another CPU takes an inter-processor interrupt (and, in a VM like this
/// development machine, a wake-up of that virtual CPU by its own host);
/// waking it on the vCPU's CPU makes the scheduler choose between the busy
/// vCPU and the woken daemon (wake-up preemption).
public enum Placement: String, CaseIterable, Codable, Sendable {
    /// Every thread may run on every CPU: the scheduler decides (a default deployment).
    case unpinned
    /// vCPU threads on CPU 0, the daemon on CPU 1: every kick is a cross-CPU wake-up.
    case split
    /// vCPU threads and the daemon on CPU 0: every kick asks the scheduler
    /// to preempt the busy vCPU for the daemon.
    case shared
    /// As `split`, the daemon SCHED_FIFO (priority 1): other work on its CPU
    /// can no longer delay it.
    case splitRealtime = "split-fifo"
    /// As `shared`, the daemon SCHED_FIFO (priority 1): a kick preempts the
    /// vCPU at once, whatever the fair scheduler would have decided.
    case sharedRealtime = "shared-fifo"

    public var title: String {
        switch self {
        case .unpinned: return "unpinned (the scheduler places every thread)"
        case .split: return "split: vCPU on CPU 0, daemon on CPU 1 (cross-CPU wake-ups)"
        case .shared: return "shared: vCPU and daemon both on CPU 0 (wake-up preemption)"
        case .splitRealtime: return "split-fifo: as split, the daemon SCHED_FIFO 1"
        case .sharedRealtime: return "shared-fifo: as shared, the daemon SCHED_FIFO 1"
        }
    }

    /// The CPUs of the vCPU threads and of the daemon on a host with
    /// `cpuCount` CPUs; nil when the placement needs more CPUs (split on one).
    public func cpus(cpuCount: Int) -> (vcpu: CPUList, daemon: CPUList)? {
        let all = CPUList(0..<max(cpuCount, 1))
        switch self {
        case .unpinned: return (all, all)
        case .split, .splitRealtime: return cpuCount >= 2 ? (CPUList([0]), CPUList([1])) : nil
        case .shared, .sharedRealtime: return (CPUList([0]), CPUList([0]))
        }
    }

    /// The daemon runs SCHED_FIFO 1 instead of SCHED_NORMAL.
    public var daemonRealtime: Bool { self == .splitRealtime || self == .sharedRealtime }

    /// Applies the placement to the vCPU threads `vcpuThreads` (TIDs of this
    /// process) and to every thread of process `daemonPID`.
    /// - Throws: `BenchError.placement` when a thread cannot be moved.
    public func apply(cpuCount: Int, vcpuThreads: [Int32], daemonPID: Int32?) throws(BenchError) {
        guard let (vcpu, daemon) = cpus(cpuCount: cpuCount) else {
            throw .placement("\(rawValue) needs at least 2 CPUs; this host has \(cpuCount)")
        }
        for tid in vcpuThreads { try Self.pin(tid, to: vcpu) }
        if let daemonPID {
            for tid in Self.threads(of: daemonPID) {
                try Self.pin(tid, to: daemon)
                try Self.schedule(tid, realtime: daemonRealtime)
            }
        }
    }

    /// SCHED_FIFO 1, or back to SCHED_NORMAL nice 0 (what the daemon starts with).
    static func schedule(_ tid: Int32, realtime: Bool) throws(BenchError) {
        let attributes = SchedAttr(
            size: UInt32(SchedAttr.sizeWithoutUtilClamp), policy: realtime ? .fifo : .normal, priority: realtime ? 1 : 0)
        do {
            try ThreadScheduling.setAttributes(attributes, of: tid)
        } catch {
            if error == .noSuchProcess { return }
            throw .placement("cannot make thread \(tid) \(realtime ? "SCHED_FIFO" : "SCHED_NORMAL"): \(error)")
        }
    }

    static func pin(_ tid: Int32, to cpus: CPUList) throws(BenchError) {
        do {
            try ThreadScheduling.setAffinity(cpus, of: tid)
        } catch {
            // A thread of the daemon that just exited is not an error.
            if error == .noSuchProcess { return }
            throw .placement("cannot move thread \(tid) to CPUs \(cpus): \(error)")
        }
    }

    /// TIDs of process `pid` (/proc/PID/task).
    static func threads(of pid: Int32) -> [Int32] { ProcessAccounting.threads(of: pid) }
}
