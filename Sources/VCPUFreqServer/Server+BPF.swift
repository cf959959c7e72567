import Logging
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

extension ServerConfiguration {
    /// What the daemon does with the BPF programs (docs/bpf.md).
    public struct BPFSettings: Sendable, Equatable {
        /// Load the programs at start (when privileges allow: root, or
        /// CAP_BPF + CAP_PERFMON). Off: no host truth, no bpf-map clamp.
        public var enabled = true
        /// Where to pin the util-hint map; nil: do not pin, and then no
        /// bpf-map clamp (a scheduler could not find the map).
        public var utilHintPinPath: String? = VCPUThreadMonitor.defaultUtilHintPinPath
        /// Count KVM exits per vCPU thread (tracepoint/kvm/*).
        public var countKVMExits = true

        public init(enabled: Bool = true, utilHintPinPath: String? = VCPUThreadMonitor.defaultUtilHintPinPath) {
            self.enabled = enabled
            self.utilHintPinPath = utilHintPinPath
        }
    }
}

/// The BPF programs in the daemon: loaded at start when the daemon may
/// (else it runs on and says why, in the log and in STATUS `daemon.bpf`),
/// every attached vCPU thread tracked, the util-hint map offered to the
/// actuation plan as the `bpf-map` clamp, and each vCPU's counters put into
/// STATUS as `host_truth` for `vcpufreq stats`.
///
/// Host truth goes through STATUS rather than a second pinned map: readers
/// need only the daemon's socket (no CAP_BPF, no libbpf), they get the
/// counters and the hints of one moment from one source, and the thread
/// map's bookkeeping fields stay private to the programs.
final class DaemonBPF {
    /// nil when the programs are not loaded.
    let monitor: VCPUThreadMonitor?
    /// `daemon.bpf` of STATUS.
    let summary: String
    /// `HostCapabilities.bpfMap`.
    let capability: HostCapabilities.Status
    private let logger: Logger
    /// Only the first failure to track is logged (a full map fails them all).
    private var trackFailureLogged = false

    init(settings: ServerConfiguration.BPFSettings, logger: Logger) {
        self.logger = logger
        guard settings.enabled else {
            monitor = nil
            summary = "not loaded: switched off (--no-bpf)"
            capability = .unavailable("the BPF programs are switched off (--no-bpf)")
            logger.notice("BPF programs switched off: no host truth in status, no bpf-map clamp")
            return
        }
        var configuration = VCPUThreadMonitor.Configuration()
        configuration.utilHintPinPath = settings.utilHintPinPath
        configuration.countKVMExits = settings.countKVMExits
        let monitor = VCPUThreadMonitor(configuration: configuration)
        let status = monitor.start()
        summary = status.summary
        capability = BPFMapActuator.capability(of: status)
        if status.isRunning {
            self.monitor = monitor
            logger.info("BPF programs loaded", metadata: ["bpf": "\(summary)"])
            for mount in status.mounted { logger.notice("mounted \(mount) for the BPF programs") }
        } else {
            self.monitor = nil
            logger.warning(
                "BPF programs not loaded; running without host truth and the bpf-map clamp",
                metadata: ["reason": "\(summary.dropFirst("not loaded: ".count))"])
        }
    }

    /// Undoes `bpf-map` journal records of a daemon that used the map when
    /// this one does not (the programs are loaded, the map is the same pin).
    var recoveryActuators: [any ThreadActuator] {
        guard let monitor, monitor.status.utilHintPinPath != nil else { return [] }
        return [BPFMapActuator(monitor: monitor)]
    }

    /// The map actuator, when the plan chose the bpf-map clamp.
    func clampActuator(for plan: ActuationPlan) -> (any ThreadActuator)? {
        guard plan.clamp == .bpfMap, let monitor else { return nil }
        return BPFMapActuator(monitor: monitor)
    }

    /// Starts counting for the threads of a VM just attached.
    func track(_ threads: [AttachedThread]) {
        guard let monitor else { return }
        for thread in threads {
            do {
                try monitor.track(tid: thread.target.tid)
            } catch {
                guard !trackFailureLogged else { continue }
                trackFailureLogged = true
                logger.warning("cannot track vCPU thread", metadata: ["tid": "\(thread.target.tid)", "error": "\(error)"])
            }
        }
    }

    /// Stops counting for the threads of a VM detached.
    func untrack(_ threads: [AttachedThread]) {
        guard let monitor else { return }
        for thread in threads { _ = try? monitor.untrack(tid: thread.target.tid) }
    }

    /// `document` with each vCPU's host truth filled in.
    func withHostTruth(_ document: StatusDocument) -> StatusDocument {
        guard let monitor else { return document }
        var document = document
        for vm in document.vms.indices {
            for vcpu in document.vms[vm].vcpus.indices {
                document.vms[vm].vcpus[vcpu].hostTruth = monitor.hostTruth(tid: document.vms[vm].vcpus[vcpu].tid)
            }
        }
        return document
    }
}
