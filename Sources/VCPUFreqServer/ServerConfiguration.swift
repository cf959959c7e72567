import VCPUFreqCore
import VCPUFreqLinux

/// Everything `vcpufreq serve` is told on its command line.
public struct ServerConfiguration: Sendable {
    public var topology: Topology
    /// Path of the listening SOCK_SEQPACKET socket.
    public var socketPath: String
    /// Group that may connect (socket mode 0660); nil = owner only (0600).
    public var socketGroupID: UInt32?
    /// Peer uids allowed besides the daemon's own uid and root.
    public var allowedUIDs: Set<UInt32>
    /// Capture and record, never change a thread.
    public var dryRun: Bool
    /// JSON-lines record of every actuator action (`--dry-run` records to stdout when nil).
    public var recordPath: String?
    /// Prometheus text file, rewritten atomically every `metricsIntervalMilliseconds`.
    public var metricsPath: String?
    public var metricsIntervalMilliseconds: Int
    /// Where the restore journal lives (survives a SIGKILL of the daemon).
    public var stateDirectory: String
    /// Host frequencies are re-read this often when the host has cpufreq.
    public var frequencyRefreshMilliseconds: Int
    /// sysfs root for `scaling_cur_freq` (tests point it at a fixture).
    public var sysfsRoot: String
    public var clampPreference: [ClampMechanism]
    public var latencyPreference: [LatencyMechanism]
    public var pinThreads: Bool
    /// Total vCPUs and VMs this daemon serves (design targets: 1024 and 64).
    public var maximumVCPUs: Int
    public var maximumVMs: Int
    /// Open connections at once (VMMs and status clients); more are refused
    /// with ERROR resources, so a local client cannot exhaust the daemon's
    /// descriptors.
    public var maximumConnections: Int
    /// After a request, keep polling epoll without sleeping for this long
    /// (µs; 0 = always sleep). A sleeping daemon's CPU may go idle, and waking
    /// an idle CPU is the tail of kick → hint latency on virtualized hosts
    /// (bench/results/daemon.md, placement). Costs CPU while requests flow.
    public var busyPollMicroseconds: Int = 0
    /// Parent of the per-VM cgroups the cgroup uclamp actuator creates;
    /// nil: the instance's own (`DaemonInstance.cgroupParent`).
    public var cgroupParent: String?
    /// How long a starting daemon waits for one that is stopping on its
    /// state directory, socket or metrics file (restoring its threads)
    /// before it gives up (`InstanceLocks`).
    public var stoppingDaemonWaitMilliseconds = 30_000
    /// Loading the BPF programs, pinning the util-hint map (Server+BPF.swift).
    public var bpf = BPFSettings()

    public init(
        topology: Topology, socketPath: String, socketGroupID: UInt32? = nil, allowedUIDs: Set<UInt32> = [],
        dryRun: Bool = false, recordPath: String? = nil, metricsPath: String? = nil, metricsIntervalMilliseconds: Int = 1000,
        stateDirectory: String = "/run/vcpufreq", frequencyRefreshMilliseconds: Int = 20, sysfsRoot: String = "/sys",
        clampPreference: [ClampMechanism] = [.uclamp, .cgroup, .bpfMap, .none],
        latencyPreference: [LatencyMechanism] = [.slice, .nice, .none], pinThreads: Bool = true,
        maximumVCPUs: Int = 1024, maximumVMs: Int = 64, maximumConnections: Int = 256, cgroupParent: String? = nil
    ) {
        self.topology = topology
        self.socketPath = socketPath
        self.socketGroupID = socketGroupID
        self.allowedUIDs = allowedUIDs
        self.dryRun = dryRun
        self.recordPath = recordPath
        self.metricsPath = metricsPath
        self.metricsIntervalMilliseconds = metricsIntervalMilliseconds
        self.stateDirectory = stateDirectory
        self.frequencyRefreshMilliseconds = frequencyRefreshMilliseconds
        self.sysfsRoot = sysfsRoot
        self.clampPreference = clampPreference
        self.latencyPreference = latencyPreference
        self.pinThreads = pinThreads
        self.maximumVCPUs = maximumVCPUs
        self.maximumVMs = maximumVMs
        self.maximumConnections = maximumConnections
        self.cgroupParent = cgroupParent
    }
}

extension ServerConfiguration {
    /// The instance its state directory names (relative paths against `workingDirectory`).
    public func instance(workingDirectory: String) -> DaemonInstance {
        DaemonInstance(stateDirectory: stateDirectory, workingDirectory: workingDirectory)
    }

    /// Where the util-hint map is pinned: the instance's pin directory
    /// unless `bpf.utilHintPin` names a path; nil when nothing is pinned.
    func utilHintPinPath(_ instance: DaemonInstance) -> String? {
        switch bpf.utilHintPin {
        case .instance: return instance.utilHintPinPath
        case .path(let path): return path
        case .none: return nil
        }
    }
}
