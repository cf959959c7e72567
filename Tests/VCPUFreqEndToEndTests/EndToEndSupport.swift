import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqConfig
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// These tests run real KVM guests against a real `vcpufreq serve` process;
/// only a machine without /dev/kvm skips them (with this reason).
let kvmAvailable = access("/dev/kvm", F_OK) == 0
let requiresKVM = Testing.ConditionTrait.enabled(
    if: kvmAvailable, "no /dev/kvm on this machine: end-to-end tests need KVM (skipped)")

/// The `vcpufreq` executable the daemon runs from: the one built next to
/// this test bundle when there is one (same configuration), else
/// `.build/debug/vcpufreq` of this package (found from #filePath).
/// `VCPUFREQ_EXECUTABLE` overrides both.
func vcpufreqExecutable(filePath: String = #filePath) -> String {
    if let path = ProcessInfo.processInfo.environment["VCPUFREQ_EXECUTABLE"] { return path }
    let bundleDirectory = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    let sibling = bundleDirectory.appendingPathComponent("vcpufreq").path
    if access(sibling, X_OK) == 0 { return sibling }
    let root = URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/vcpufreq").path
}

/// The topology every test serves: two nominal clusters (no live cpufreq, so
/// cur_perf is deterministic on any host), a schedutil host (× 0.8 headroom
/// compensation), and one profile per behaviour under test.
enum TestTopology {
    static let text = """
        [host]
        name = "e2e"
        governor = "schedutil"

        [[host.cluster]]
        name = "little"
        cpus = "0"
        capacity = 430
        frequencies_khz = [300000, 576000, 1000000, 1401000, 1804000]
        nominal = true

        [[host.cluster]]
        name = "big"
        cpus = "1"
        capacity = 1024
        frequencies_khz = [500000, 1000000, 1500000, 2000000, 2500000, 3000000]
        nominal = true

        # vCPU 0 models little but runs on the big CPU (util_max holds it);
        # kicks always wanted, no rate limit or dead band: every request shows.
        [[vm]]
        name = "duo"
        vcpus = 2
        clusters = ["little", "big"]
        pin_cpus = ["1", ""]
        pin = false
        [vm.policy]
        min_interval_us = 0
        hysteresis = 0
        kick_mode = "always"

        # Four vCPUs in two domains numbered 7 and 3 (values, not indices).
        [[vm]]
        name = "quad"
        vcpus = 4
        clusters = ["little", "little", "big", "big"]
        domains = [7, 7, 3, 3]
        pin = false

        # The driver's "no table" mode: perftbl_len 1, entry 0 = max.
        [[vm]]
        name = "maxonly"
        vcpus = 2
        clusters = ["big", "little"]
        table_mode = "max-only"
        pin = false

        # Kicks suppressed for good: the daemon polls every 50 ms.
        [[vm]]
        name = "polled"
        vcpus = 2
        clusters = ["little", "big"]
        pin = false
        [vm.policy]
        kick_mode = "never"
        poll_interval_us = 50000
        min_interval_us = 0
        hysteresis = 0
        """

    /// The decoded file: the tests derive expectations from its raw values
    /// (cluster tables, domains), never from the daemon's model.
    static let topology: Topology = {
        let (decoded, diagnostics) = TopologyFile.decode(text)
        guard let decoded else { fatalError("test topology: \(diagnostics)") }
        return decoded
    }()

    static func profile(_ name: String) -> VMProfile { topology.profile(named: name)! }

    static func cluster(_ name: String) -> HostCluster {
        topology.host.clusters.first { $0.name == name }!
    }

    /// What `perftbl_rd` must give for vCPU `vcpu` of `profile`, entry by entry:
    /// the modeled cluster's table ascending, or just its maximum in max-only mode.
    static func expectedTable(_ profile: VMProfile, vcpu: Int) -> [UInt32] {
        let table = cluster(profile.clusters[vcpu]).frequenciesKHz.map { UInt32($0) }
        return profile.tableMode == .maxOnly ? [table.last!] : table
    }

    /// `perf_domain` of each vCPU: the profile's numbers, or one per modeled
    /// cluster in order of first appearance (docs/topology.md).
    static func expectedDomains(_ profile: VMProfile) -> [UInt32] {
        if let domains = profile.domains { return domains.map { UInt32($0) } }
        var numbers: [String] = []
        return profile.clusters.map { name in
            if let index = numbers.firstIndex(of: name) { return UInt32(index) }
            numbers.append(name)
            return UInt32(numbers.count - 1)
        }
    }
}

/// A daemon of its own for one test: the topology written to a private
/// directory, `vcpufreq serve` started with an action record.
final class TestDaemon {
    let directory: String
    let process: DaemonProcess

    init(record: Bool = true, arguments: [String] = []) throws {
        directory = NSTemporaryDirectory() + "vcpufreq-e2e-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let topology = directory + "/topology.toml"
        try TestTopology.text.write(toFile: topology, atomically: true, encoding: .utf8)
        process = try DaemonProcess(
            executable: vcpufreqExecutable(), topology: topology, record: record,
            arguments: ["--log-level", "notice"] + arguments)
    }

    deinit {
        process.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    var socketPath: String { process.socketPath }

    /// A VM of `profile` attached to this daemon.
    func vm(_ profile: String, name: String? = nil, mirror: Bool = true, sharedPage: Bool = true) throws -> ConnectedVM {
        let vcpus = TestTopology.profile(profile).vcpuCount
        return try ConnectedVM(
            socketPath: socketPath,
            options: .init(
                vmName: name ?? "\(profile)-\(UUID().uuidString.prefix(8))", profile: profile, vcpuCount: vcpus,
                sharedPage: sharedPage, mirror: mirror))
    }

    /// A separate client connection (status, direct READs).
    func client() throws -> VCPUFreqClient {
        try VCPUFreqClient(socketPath: socketPath, clientName: "e2e test")
    }

    /// The action record, one decoded JSON object per line.
    var records: [[String: Any]] {
        process.recordLines.compactMap { line in
            (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any]
        }
    }

    /// "apply" records for thread `tid`, in order.
    func applies(tid: Int32) -> [[String: Any]] {
        records.filter { $0["action"] as? String == "apply" && ($0["tid"] as? Int).map(Int32.init) == tid }
    }
}

/// A guest waiting for the daemon to acknowledge a request spins without a
/// count limit of its own (pause costs 3...50 ns by CPU model); the run's
/// watchdog ends it after `acknowledgementTimeout` (KVMError.timedOut), so a
/// daemon that never consumes fails the test in seconds.
let acknowledgementSpins: UInt64 = 1 << 40
let acknowledgementTimeout: Duration = .seconds(5)

/// Polls `condition` every millisecond until it holds or `timeout` passes;
/// returns whether it held.
func eventually(timeout: Duration = .seconds(3), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        usleep(1_000)
    }
    return try condition()
}

/// The utilization the design's formula gives for `kHz` on a vCPU modeling
/// `cluster` on a schedutil host: capacity × perf / fmax × 0.8, rounded to
/// nearest. Computed in floating point, independently of the policy code.
func expectedUtilization(kHz: UInt32, cluster: HostCluster) -> Int {
    let value = Double(cluster.capacity) * Double(kHz) / Double(cluster.maxFrequencyKHz) * 0.8
    return min(1024, Int(value.rounded()))
}

/// `se.slice` of thread `tid` of this process, ns (nil when the kernel does not show it).
func eevdfSlice(tid: Int32) -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/self/task/\(tid)/sched", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix("se.slice") {
        return line.split(separator: ":").last.flatMap { UInt64($0.trimmingCharacters(in: .whitespaces)) }
    }
    return nil
}

extension Result where Failure == KVMError {
    /// The success value, or a test failure naming the vCPU's error.
    func unwrap(sourceLocation: SourceLocation = #_sourceLocation) throws -> Success {
        switch self {
        case .success(let value): return value
        case .failure(let error):
            Issue.record("guest run failed: \(error)", sourceLocation: sourceLocation)
            throw error
        }
    }
}

/// Every end-to-end suite, one test at a time: each starts its own daemon
/// and real vCPU threads, and the timing checks (poll interval, exit counts
/// under a kick storm) need the two cores to themselves as far as possible.
@Suite(requiresKVM, .serialized) enum EndToEnd {}
