import Foundation
import VCPUFreqLinux

/// A live thread's scheduling state as the kernel reports it: sched_getattr
/// for the clamps, /proc/<tid>/sched for the EEVDF slice, getpriority,
/// sched_getaffinity, /proc/<tid>/cgroup. Nothing here comes from the daemon.
public struct ThreadState: Equatable, Sendable, CustomStringConvertible {
    public var utilMin: UInt32?
    public var utilMax: UInt32?
    public var resetOnFork: Bool?
    public var sliceNanoseconds: UInt64?
    public var nice: Int32?
    public var cpus: [Int]?
    /// cgroup v2 path (`0::` line of /proc/<tid>/cgroup).
    public var cgroup: String?

    public static func of(_ tid: Int32) -> ThreadState {
        let attributes = try? ThreadScheduling.attributes(of: tid)
        return ThreadState(
            utilMin: attributes?.utilMin, utilMax: attributes?.utilMax,
            resetOnFork: attributes.map { $0.flags.contains(.resetOnFork) },
            sliceNanoseconds: ProcFS().eevdfSliceNanoseconds(ofThread: tid), nice: try? ThreadScheduling.nice(of: tid),
            cpus: (try? ThreadScheduling.affinity(of: tid))?.ids, cgroup: ProcFS().cgroups(ofThread: tid).unifiedPath)
    }

    public var description: String {
        func show<T>(_ value: T?) -> String { value.map { "\($0)" } ?? "?" }
        return "uclamp \(show(utilMin))/\(show(utilMax))\(resetOnFork == true ? " reset_on_fork" : ""), "
            + "slice \(show(sliceNanoseconds)) ns, nice \(show(nice)), cpus \(show(cpus)), cgroup \(show(cgroup))"
    }
}

/// The kernel's own accounting of a thread: /proc/self/task/<tid>/schedstat
/// (time on CPU) and status (context switches).
public struct ThreadAccounting: Equatable, Sendable {
    public var runtimeNanoseconds: UInt64
    public var voluntarySwitches: UInt64
    public var involuntarySwitches: UInt64

    public static func of(_ tid: Int32) -> ThreadAccounting? {
        let directory = "/proc/self/task/\(tid)"
        guard let schedstat = readText(directory + "/schedstat"), let status = readText(directory + "/status"),
            let runtime = schedstat.split(separator: " ").first.flatMap({ UInt64($0) })
        else { return nil }
        func field(_ name: String) -> UInt64 {
            for line in status.split(separator: "\n") where line.hasPrefix(name) {
                return UInt64(line.dropFirst(name.count).trimmingCharacters(in: .whitespaces)) ?? 0
            }
            return 0
        }
        return ThreadAccounting(
            runtimeNanoseconds: runtime, voluntarySwitches: field("voluntary_ctxt_switches:"),
            involuntarySwitches: field("nonvoluntary_ctxt_switches:"))
    }
}

/// Polls `condition` until it holds or `timeoutSeconds` pass (the daemon
/// applies and restores asynchronously; TCG guests are slow).
public func eventually(timeoutSeconds: Double = 10, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    repeat {
        if condition() { return true }
        usleep(5_000)
    } while Date() < deadline
    return condition()
}

/// A small text file (procfs, sysfs, cgroupfs); nil when it cannot be read.
public func readText(_ path: String) -> String? { try? String(contentsOfFile: path, encoding: .utf8) }

/// Whether anything exists at `path`.
public func exists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
