import Foundation
import SystemPackage
import VCPUFreqBPF
import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// Where the scheduler experiments run: a private directory (topology,
/// sockets, state), a private util-hint pin, the daemons they start (this
/// binary's `serve`), and what the kernel says about sched_ext.
final class SchedLab {
    let executable: String
    let directory: String
    let topology: SchedTopology
    /// A pin of our own, so the experiment never touches another daemon's map.
    let pinPath: String
    let stateDirectory: String
    let topologyPath: String
    private var daemons = 0

    /// The scheduler's boost bound in the experiments. The policy's 100 µs
    /// latency slice (the EEVDF mode's hint, the kernel's smallest) would
    /// also bound each boost; under TCG one 50 µs work item of the woken
    /// thread costs well over 100 µs of CPU with its wake-up and sleep, so
    /// every boost would run out before the thread sleeps again.
    static let boostMicroseconds = 1000

    /// How long a daemon may take until its scheduler shows in STATUS (TCG is slow).
    static let schedulerTimeoutSeconds = 60.0

    init(executable: String, cpus: [Int]) throws {
        self.executable = executable
        topology = SchedTopology(cpus: cpus)
        let tag = "vcpufreq-sched-\(getpid())"
        directory = NSTemporaryDirectory() + tag
        pinPath = "/sys/fs/bpf/\(tag)/util_hint"
        stateDirectory = directory + "/state"
        topologyPath = directory + "/topology.toml"
        try? FileManager.default.removeItem(atPath: directory)
        do {
            try FileManager.default.createDirectory(atPath: stateDirectory, withIntermediateDirectories: true)
            try Data(topology.text.utf8).write(to: URL(fileURLWithPath: topologyPath))
        } catch {
            throw BenchError("cannot prepare \(directory): \(error)")
        }
    }

    /// Removes the directory and our pin (and its directory).
    func cleanUp() {
        try? FileManager.default.removeItem(atPath: directory)
        unlink(pinPath)
        rmdir((pinPath as NSString).deletingLastPathComponent)
    }

    /// `vcpufreq serve` on a fresh socket, the lab's state directory and pin;
    /// with `--scheduler sched-ext` when `scheduler`. Its event loop runs on
    /// `daemonCPUs` (the little cluster: away from the measured threads).
    func startDaemon(scheduler: Bool, extraArguments: [String] = []) throws -> DaemonProcess {
        daemons += 1
        var arguments = ["--bpf-pin-path", pinPath, "--log-level", "info"] + extraArguments
        if scheduler { arguments += ["--scheduler", "sched-ext", "--scheduler-boost-us", "\(Self.boostMicroseconds)"] }
        let daemon = try DaemonProcess(
            executable: executable, topologyPath: topologyPath, socketPath: directory + "/d\(daemons).sock",
            stateDirectory: stateDirectory, logPath: directory + "/d\(daemons).log", preload: nil,
            extraArguments: arguments, startTimeoutSeconds: Self.schedulerTimeoutSeconds)
        try? daemon.setAffinity(CPUList(topology.little))
        return daemon
    }

    /// The daemon's STATUS.
    func status(_ daemon: DaemonProcess) throws -> StatusDocument {
        do {
            let client = try VCPUFreqClient(socketPath: daemon.socketPath, clientName: "vcpufreq sched")
            return try client.status()
        } catch {
            throw BenchError("STATUS of the daemon: \(error); log: \(daemon.logTail())")
        }
    }

    /// Waits until STATUS shows the scheduler loaded (or, with `loaded`
    /// false, anything but loading); returns the document.
    func waitForScheduler(_ daemon: DaemonProcess, loaded: Bool = true) throws -> StatusDocument {
        let deadline = Date().addingTimeInterval(Self.schedulerTimeoutSeconds)
        var last: StatusDocument?
        while Date() < deadline {
            let document = try status(daemon)
            last = document
            if let scheduler = document.daemon.scheduler {
                if scheduler.loaded == loaded { return document }
                if loaded, !scheduler.state.hasPrefix("not loaded: not started") { break }
            }
            usleep(100_000)
        }
        throw BenchError(
            "the daemon's scheduler is not \(loaded ? "loaded" : "unloaded"): \(last?.daemon.scheduler?.state ?? "no scheduler in STATUS"); log: \(daemon.logTail())")
    }
}

/// The topology the experiments serve: the first online CPU is the little
/// cluster (capacity 512), the others the big one (1024); profiles of one
/// and two vCPUs modelling big CPUs, unpinned, with a policy that applies
/// every request at once and a 100 µs latency slice (the kernel's smallest).
struct SchedTopology: Equatable {
    var cpus: [Int]
    var latencySliceMicroseconds = 100

    var little: [Int] { Array(cpus.prefix(1)) }
    var big: [Int] { Array(cpus.dropFirst()) }

    static func profile(vcpus: Int) -> String { "sched-\(vcpus)" }

    /// The host part, as the daemon reads it from `text`.
    var host: HostTopology {
        HostTopology(
            name: "vcpufreq sched", governor: HostGovernor.none,
            clusters: [("little", little, 512), ("big", big, 1024)].map {
                HostCluster(name: $0.0, cpus: CPUList($0.1), capacity: $0.2, frequenciesKHz: [1_000_000, 2_000_000], isNominal: true)
            })
    }

    var text: String {
        var lines = [
            "# Generated by `vcpufreq scheduler selftest` / `vcpufreq bench sched`.",
            "[host]", "name = \"vcpufreq sched\"", "governor = \"none\"", "cpus = \"\(CPUList(cpus))\"",
        ]
        for cluster in host.clusters {
            lines += [
                "", "[[host.cluster]]", "name = \"\(cluster.name)\"", "cpus = \"\(cluster.cpus)\"",
                "capacity = \(cluster.capacity)",
                "frequencies_khz = [\(cluster.frequenciesKHz.map(String.init).joined(separator: ", "))]", "nominal = true",
            ]
        }
        for vcpus in [1, 2] {
            lines += [
                "", "[[vm]]", "name = \"\(Self.profile(vcpus: vcpus))\"", "vcpus = \(vcpus)",
                "clusters = [\(Array(repeating: "\"big\"", count: vcpus).joined(separator: ", "))]",
                "domains = [\((0..<vcpus).map(String.init).joined(separator: ", "))]",
                "pin = false", "util_cap = 1024", "headroom = \"none\"",
                "", "[vm.policy]", "hysteresis = 0", "min_interval_us = 0", "boost_hold_ms = 0", "idle_decay_ms = 0",
                "latency_hint = \"slice\"", "latency_slice_us = \(latencySliceMicroseconds)", "kick_mode = \"always\"",
            ]
        }
        return lines.joined(separator: "\n") + "\n"
    }
}

/// A VM of the experiments: EmulatedVM (shared page, doorbells) with the
/// guest's requests and the wait until the daemon shows them applied.
final class SchedVM {
    let vm: EmulatedVM

    init(lab: SchedLab, daemon: DaemonProcess, name: String, threads: [SchedWorker]) throws {
        vm = try EmulatedVM(
            socketPath: daemon.socketPath, name: name, profile: SchedTopology.profile(vcpus: threads.count),
            threadIDs: threads.map(\.tid), bpfMapPage: true)
    }

    /// Publishes a request in vCPU `vcpu`'s slot (and rings when asked), then
    /// waits until the host area shows util_min (and the slice, if latency).
    func request(vcpu: Int, utilization: UInt32, latency: Bool, sliceMicroseconds: UInt32) throws {
        var flags: SharedPageABI.GuestFlags = .utilValid
        if latency { flags.insert(.latencySensitive) }
        if vm.guest.publish(slot: vcpu, utilization: utilization, performanceKHz: 0, flags: flags) {
            var one: UInt64 = 1
            _ = withUnsafeBytes(of: &one) { write(vm.doorbells[vcpu].rawValue, $0.baseAddress, 8) }
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let area = vm.guest.readHostArea(slot: vcpu), area.utilMin == UInt16(utilization),
                !latency || area.appliedSliceMicroseconds == sliceMicroseconds
            {
                return
            }
            usleep(2000)
        }
        throw BenchError(
            "vCPU \(vcpu): request util \(utilization)\(latency ? " latency" : "") not applied within 10 s; host area: \(vm.guest.readHostArea(slot: vcpu).map { "\($0)" } ?? "-")")
    }

    func detach() { vm.detach() }
}

/// What the kernel says about sched_ext (its sysfs files and log).
enum SchedExtKernel {
    static func read(_ name: String) -> String? {
        ProcText.read("/sys/kernel/sched_ext/\(name)")?.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// enabling, enabled, disabling, disabled.
    static var state: String { read("state") ?? "absent" }
    /// The root scheduler's name; nil when none is loaded.
    static var rootScheduler: String? { read("root/ops") }
    /// How many times a scheduler was enabled since boot.
    static var enableSequence: Int { Int(read("enable_seq") ?? "") ?? -1 }

    /// sysrq-S through /proc/sysrq-trigger: the kernel disables sched_ext
    /// ("revert all tasks to CFS"). Whether the write was taken.
    static func sysrqReset() -> Bool {
        let fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var key = UInt8(ascii: "S")
        return write(fd, &key, 1) == 1
    }

    /// Waits (up to `seconds`) until sched_ext is disabled with no root scheduler.
    static func waitUntilDisabled(seconds: Double = 10) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        repeat {
            if state == "disabled", rootScheduler == nil { return true }
            usleep(50_000)
        } while Date() < deadline
        return false
    }

    /// The kernel log's sched_ext lines so far (/dev/kmsg, read without blocking).
    static func logLines() -> [String] {
        let fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var lines: [String] = []
        var buffer = [UInt8](repeating: 0, count: 8192)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EPIPE { continue }  // overwritten records: skip on
            guard count > 0 else { break }
            let record = String(decoding: buffer.prefix(count), as: UTF8.self)
            // "level,seq,time,flags;message"
            if let semicolon = record.firstIndex(of: ";") {
                let message = record[record.index(after: semicolon)...].split(separator: "\n").first.map(String.init) ?? ""
                if message.hasPrefix("sched_ext") { lines.append(message) }
            }
        }
        return lines
    }
}

/// The attributes of a thread vcpufreq may change, read from the kernel.
struct ThreadAttributes: Equatable, CustomStringConvertible {
    var utilMin: UInt32
    var utilMax: UInt32
    var sliceNanoseconds: UInt64
    var policy: SchedPolicy
    var nice: Int32
    var affinity: CPUList

    static func read(tid: Int32) throws -> ThreadAttributes {
        do {
            let attr = try ThreadScheduling.attributes(of: tid)
            return ThreadAttributes(
                utilMin: attr.utilMin, utilMax: attr.utilMax, sliceNanoseconds: attr.runtimeNanoseconds,
                policy: attr.policy, nice: attr.nice, affinity: try ThreadScheduling.affinity(of: tid))
        } catch {
            throw BenchError("cannot read the attributes of thread \(tid): \(error)")
        }
    }

    var description: String {
        "uclamp \(utilMin)..\(utilMax), slice \(sliceNanoseconds) ns, \(policy), nice \(nice), CPUs \(affinity)"
    }
}
