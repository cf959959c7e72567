import CVCPUFreqSys
import Foundation
import Synchronization
import Testing
import VCPUFreqLinux
import VCPUFreqTestSupport

@testable import VCPUFreqBPF

/// Every test that loads BPF programs or times threads runs inside this one
/// serialized suite: on a 2-CPU machine two timing tests side by side would
/// measure each other.
@Suite(.serialized, .enabled(if: Privileges.current().canLoadBPF, "needs root, or CAP_BPF + CAP_PERFMON"))
struct KernelTests {}

/// Test helpers.
enum Support {
    /// A monitor started with no pinned map and without the KVM programs
    /// (attaching classic tracepoints costs about 0.3 s here), or a failed
    /// expectation. `adjust` can change that.
    static func startedMonitor(
        sourceLocation: SourceLocation = #_sourceLocation,
        _ adjust: (inout VCPUThreadMonitor.Configuration) -> Void = { _ in }
    ) throws -> VCPUThreadMonitor {
        var configuration = VCPUThreadMonitor.Configuration()
        configuration.utilHintPinPath = nil
        configuration.countKVMExits = false
        adjust(&configuration)
        let monitor = VCPUThreadMonitor(configuration: configuration)
        let status = monitor.start()
        try #require(status.isRunning, "\(status)", sourceLocation: sourceLocation)
        return monitor
    }

    /// A unique pin path under bpffs for one test.
    static func testPinPath(_ name: String) -> (directory: String, path: String) {
        let directory = "/sys/fs/bpf/vcpufreq-test-\(getpid())-\(name)"
        return (directory, directory + "/util_hint")
    }

    /// Runs a program; its exit status and standard output.
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let run = try ProgramOutput.of(process)
        return (run.status, run.standardOutput, run.standardError)
    }

    /// An executable on PATH (or in /usr/sbin, /sbin), or nil.
    static func which(_ name: String) -> String? {
        let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin:/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/\(name)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// The SCHED_RR priority of the real-time tests' threads: above what this
    /// project's daemon, benchmarks and other tests use (FIFO 1 to 10), so
    /// real-time load the test cannot see is unlikely to share or take their
    /// CPU; below the kernel's threaded interrupt handlers and watchdog (50),
    /// which must still run.
    static let roundRobinPriority: Int32 = 40

    /// Makes thread `tid` (0: the calling thread) SCHED_RR at `priority`;
    /// returns whether it worked.
    @discardableResult
    static func setRoundRobin(tid: Int32 = 0, priority: Int32 = roundRobinPriority) -> Bool {
        setRealtime(tid: tid, policy: SCHED_RR, priority: priority)
    }

    /// Gives thread `tid` (0: the calling thread) a real-time `policy`
    /// (SCHED_FIFO, SCHED_RR) at `priority`; returns whether it worked.
    static func setRealtime(tid: Int32, policy: Int32, priority: Int32) -> Bool {
        var parameters = sched_param(sched_priority: priority)
        return sched_setscheduler(tid, policy, &parameters) == 0
    }

    /// The SCHED_RR time slice (/proc/sys/kernel/sched_rr_timeslice_ms), ns.
    static var roundRobinSliceNanoseconds: UInt64 {
        let text = FileSystems.readSmallFile("/proc/sys/kernel/sched_rr_timeslice_ms") ?? ""
        let milliseconds = UInt64(text.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 100
        return max(1, milliseconds) * 1_000_000
    }

    /// The longest a real-time thread that is alone at its priority can be
    /// kept off its CPU by CFS protection, ns: real-time throttling stops
    /// real-time threads for sched_rt_period_us - sched_rt_runtime_us of
    /// each period once they used their share (50 ms of 1 s by default), and
    /// the fair server (Linux 6.12 on) gives starved CFS threads 50 ms a
    /// second. Either way, 50 ms unless the sysctls say more.
    static var realtimeStallNanoseconds: UInt64 {
        func value(_ name: String) -> Int64? {
            FileSystems.readSmallFile("/proc/sys/kernel/" + name).flatMap {
                Int64($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
        }
        let fairServer: UInt64 = 50_000_000
        guard let period = value("sched_rt_period_us"), let runtime = value("sched_rt_runtime_us"), runtime >= 0,
            period > runtime
        else { return fairServer }
        return max(fairServer, UInt64(period - runtime) * 1_000)
    }

    /// Whether the kernel keeps per-task sched_info (CONFIG_SCHED_INFO): then
    /// the programs read run delays from it and /proc/<tid>/schedstat exists.
    static var kernelHasSchedInfo: Bool { FileSystems.exists("/proc/self/schedstat") }

    /// The directory of the running test binary, where SwiftPM also puts the
    /// package's executables.
    static var buildDirectory: String {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return (exe as NSString).deletingLastPathComponent
    }
}

/// The kernel's own accounting of one thread of this process
/// (/proc/self/task/TID): the independent oracle the BPF counters are checked
/// against.
struct KernelThreadCounters {
    /// se.sum_exec_runtime, ns (schedstat field 1).
    var runtimeNanoseconds: UInt64
    /// sched_info.run_delay: time spent runnable but waiting on a run queue,
    /// ns (schedstat field 2).
    var runDelayNanoseconds: UInt64
    /// nvcsw.
    var voluntarySwitches: UInt64
    /// nivcsw.
    var involuntarySwitches: UInt64
    /// se.nr_migrations.
    var migrations: UInt64

    /// The counters of thread `tid` of this process, or nil when it is gone.
    /// Exact only while the thread is off its CPU: for a running thread the
    /// kernel shows `se.sum_exec_runtime` as of its last tick or switch.
    static func of(tid: Int32) -> KernelThreadCounters? {
        let directory = "/proc/self/task/\(tid)"
        guard let schedstatText = FileSystems.readSmallFile(directory + "/schedstat"),
            let status = FileSystems.readSmallFile(directory + "/status"),
            let sched = FileSystems.readSmallFile(directory + "/sched")
        else { return nil }
        let schedstat = schedstatText.split(separator: " ")
        func field(_ text: String, _ name: String, separator: Character) -> UInt64 {
            for line in text.split(separator: "\n") where line.hasPrefix(name) {
                let value = line.split(separator: separator).last?.trimmingCharacters(in: .whitespaces) ?? ""
                return UInt64(value) ?? 0
            }
            return 0
        }
        return KernelThreadCounters(
            runtimeNanoseconds: schedstat.count > 0 ? UInt64(schedstat[0]) ?? 0 : 0,
            runDelayNanoseconds: schedstat.count > 1 ? UInt64(schedstat[1]) ?? 0 : 0,
            voluntarySwitches: field(status, "voluntary_ctxt_switches", separator: ":"),
            involuntarySwitches: field(status, "nonvoluntary_ctxt_switches", separator: ":"),
            migrations: field(sched, "se.nr_migrations", separator: ":"))
    }

    static func - (a: KernelThreadCounters, b: KernelThreadCounters) -> KernelThreadCounters {
        KernelThreadCounters(
            runtimeNanoseconds: a.runtimeNanoseconds &- b.runtimeNanoseconds,
            runDelayNanoseconds: a.runDelayNanoseconds &- b.runDelayNanoseconds,
            voluntarySwitches: a.voluntarySwitches &- b.voluntarySwitches,
            involuntarySwitches: a.involuntarySwitches &- b.involuntarySwitches,
            migrations: a.migrations &- b.migrations)
    }
}

/// A value a test thread hands back to the test.
final class Box<Value: Sendable>: @unchecked Sendable {
    private let lock = AnnotatedMutex<Value?>(nil)
    func set(_ value: Value) { lock.withLock { $0 = value } }
    var value: Value? { lock.withLock { $0 } }
}

/// A flag one thread raises and another polls.
final class StopFlag: Sendable {
    private let flag = Atomic<Bool>(false)
    func raise() { flag.store(true, ordering: .releasing) }
    var isRaised: Bool { flag.load(ordering: .acquiring) }
}

/// The stats of a thread that has exited, once its last switch-out is
/// counted (pthread_join returns before the dying thread leaves the CPU).
func settledStats(_ monitor: VCPUThreadMonitor, tid: Int32) throws -> ThreadStats {
    let deadline = NativeThread.monotonicNanoseconds() + 2_000_000_000
    while true {
        let stats = try #require(try monitor.stats(tid: tid))
        if !stats.isOnCPU || NativeThread.monotonicNanoseconds() > deadline { return stats }
        NativeThread.sleep(nanoseconds: 1_000_000)
    }
}
