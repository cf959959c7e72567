import Foundation
import VCPUFreqBench
import VCPUFreqLinux
import VCPUFreqProtocol

/// What every facet shares in one run: the daemon binary, a work directory,
/// the topology, and one daemon with the default plan that most facets use
/// (each daemon start costs seconds in a TCG guest).
public final class KernelLab {
    /// `vcpufreq` (the debug build scripts/test makes).
    public let executable: String
    /// This driver, for the VMM child it starts (`vcpufreq-kernel-lab vmm`).
    public let labExecutable: String
    public let workDirectory: String
    public let topologyPath: String
    /// Where the daemons pin the util-hint map (unique per run).
    public let utilHintPinPath: String
    private var started = 0
    private var shared: LabDaemon?
    /// The default daemon's first STATUS: what it detected and planned does
    /// not change while the kernel runs, so a facet after one that stopped
    /// the daemon reads this instead of starting it again (a start costs
    /// several seconds of BPF verification in a TCG guest).
    private var defaultDaemonStatus: StatusDocument.Daemon?

    public init(executable: String, labExecutable: String, workDirectory: String) throws {
        self.executable = executable
        self.labExecutable = labExecutable
        self.workDirectory = workDirectory
        try FileManager.default.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)
        topologyPath = workDirectory + "/topology.toml"
        try LabTopology.toml.write(toFile: topologyPath, atomically: true, encoding: .utf8)
        utilHintPinPath = "/sys/fs/bpf/vcpufreq-lab-\(getpid())/util_hint"
    }

    /// A new daemon; `stateDirectory` nil gives it one of its own.
    public func startDaemon(_ arguments: [String] = [], stateDirectory: String? = nil) throws -> LabDaemon {
        started += 1
        let name = "d\(started)"
        return try LabDaemon(
            executable: executable,
            arguments: ["--topology", topologyPath, "--bpf-pin-path", utilHintPinPath] + arguments,
            socketPath: workDirectory + "/\(name).sock", stateDirectory: stateDirectory ?? workDirectory + "/\(name)-state",
            logPath: workDirectory + "/\(name).log")
    }

    /// The daemon with the default plan (every mechanism in preference order), started once.
    public func defaultDaemon() throws -> LabDaemon {
        if let shared { return shared }
        let daemon = try startDaemon()
        shared = daemon
        return daemon
    }

    /// The default daemon's capabilities and plan.
    public func defaultStatus() throws -> StatusDocument.Daemon {
        if let defaultDaemonStatus { return defaultDaemonStatus }
        let status = try defaultDaemon().status().daemon
        defaultDaemonStatus = status
        return status
    }

    /// Stops the shared daemon (before facets that must be alone).
    public func stopDefaultDaemon() {
        shared?.stop()
        shared = nil
    }

    /// `count` vCPU threads attached as VM `name` with `profile`; with
    /// `bpfMapPage` the VMM asks for its shared page as a BPF map.
    public func attach(_ daemon: LabDaemon, name: String, profile: String, count: Int, bpfMapPage: Bool = false) throws -> LabVM {
        try LabVM(
            socketPath: daemon.socketPath, name: name, profile: profile, threads: (0..<count).map { _ in LabThread() },
            bpfMapPage: bpfMapPage)
    }
}

/// One VM of the lab: real threads and an emulated VMM (the daemon
/// benchmark's: its own connection, the shared page, doorbells).
public final class LabVM {
    public let threads: [LabThread]
    public let vm: EmulatedVM
    /// The kernel's view of each thread before the daemon saw it.
    public let originals: [ThreadState]
    public var tids: [Int32] { threads.map(\.tid) }

    public init(socketPath: String, name: String, profile: String, threads: [LabThread], bpfMapPage: Bool = false) throws {
        self.threads = threads
        originals = threads.map { ThreadState.of($0.tid) }
        vm = try EmulatedVM(
            socketPath: socketPath, name: name, profile: profile, threadIDs: threads.map(\.tid),
            clientName: "kernel-lab", bpfMapPage: bpfMapPage)
    }

    public var live: [ThreadState] { tids.map(ThreadState.of) }

    /// A guest request on vCPU `vcpu` through the shared page.
    public func request(vcpu: Int, utilization: UInt32, latencySensitive: Bool = false) throws {
        try vm.publish(vcpu: vcpu, utilization: utilization, latencySensitive: latencySensitive)
    }

    /// This VM's vCPUs as the daemon's STATUS shows them.
    public func status(_ daemon: LabDaemon) throws -> [StatusDocument.VCPU] {
        guard let mine = try daemon.status().vms.first(where: { $0.name == vm.name }) else {
            throw LabError("STATUS does not list VM \(vm.name)")
        }
        return mine.vcpus
    }

    /// Waits until the kernel shows every thread as it was before attach.
    public func waitUntilRestored(timeoutSeconds: Double = 10) -> Bool {
        eventually(timeoutSeconds: timeoutSeconds) { live == originals }
    }

    /// "thread N: now … was …" for every thread not back as it was.
    public func differences() -> [String] {
        zip(tids, zip(live, originals)).compactMap { tid, pair in
            pair.0 == pair.1 ? nil : "thread \(tid): now \(pair.0), was \(pair.1)"
        }
    }

    public func detach() { vm.detach() }

    deinit {
        vm.detach()
        for thread in threads { thread.stop() }
    }
}
