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
        /// VMs that can have a BPF-map shared page at once (the daemon sets
        /// it to --max-vms).
        public var maximumPageVMs = 64

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
    /// Whether VMs can get a BPF-map shared page (STATUS
    /// `capabilities.bpf_map_page`): the programs run; else why not.
    let pageCapability: HostCapabilities.Status
    private let logger: Logger
    /// Only the first failure to track is logged (a full map fails them all).
    private var trackFailureLogged = false
    /// vm_pages indices in use, and where the next search starts: indices are
    /// handed out round-robin, so one is reused only after every other was,
    /// long after a program could still hold a reference to its last VM.
    private var usedIndices: Set<UInt32> = []
    private var nextIndex: UInt32 = 0

    init(settings: ServerConfiguration.BPFSettings, host: HostTopology, logger: Logger) {
        self.logger = logger
        guard settings.enabled else {
            monitor = nil
            summary = "not loaded: switched off (--no-bpf)"
            capability = .unavailable("the BPF programs are switched off (--no-bpf)")
            pageCapability = .unavailable("the BPF programs are switched off (--no-bpf): shared pages are memfds")
            logger.notice("BPF programs switched off: no host truth in status, no bpf-map clamp, memfd shared pages")
            return
        }
        var configuration = VCPUThreadMonitor.Configuration()
        configuration.utilHintPinPath = settings.utilHintPinPath
        configuration.countKVMExits = settings.countKVMExits
        configuration.maxPageVMs = UInt32(clamping: max(settings.maximumPageVMs, 1))
        let monitor = VCPUThreadMonitor(configuration: configuration)
        let status = monitor.start()
        summary = status.summary
        capability = BPFMapActuator.capability(of: status)
        if status.isRunning {
            self.monitor = monitor
            logger.info("BPF programs loaded", metadata: ["bpf": "\(summary)"])
            for mount in status.mounted { logger.notice("mounted \(mount) for the BPF programs") }
            do {
                try monitor.setCPUTable(HostCPUTable(host: host))
                pageCapability = .available(
                    "shared pages are BPF maps for VMMs that ask (HELLO feature 0x10000); up to "
                        + "\(monitor.pageVMCapacity) VMs; host BPF programs read them in place")
            } catch {
                pageCapability = .unavailable("cannot write the host CPU table for the BPF programs: \(error)")
                logger.warning("BPF-map shared pages off", metadata: ["error": "\(error)"])
            }
        } else {
            self.monitor = nil
            pageCapability = .unavailable("the BPF programs are not loaded: shared pages are memfds")
            logger.warning(
                "BPF programs not loaded; running without host truth and the bpf-map clamp",
                metadata: ["reason": "\(summary.dropFirst("not loaded: ".count))"])
        }
    }

    /// Whether HELLO may grant `ProtocolFeature.bpfMapPage`.
    var offersPages: Bool {
        if case .available = pageCapability { return true }
        return false
    }

    /// A BPF map for `session`'s page and a free vm_pages index, or why the
    /// VM gets a memfd instead. The page is not installed yet (`install`).
    func makePage(for session: VMSession) -> Result<(map: BPFPageMap, index: UInt32), PageRefusal> {
        guard let monitor, offersPages else {
            if case .unavailable(let reason) = pageCapability { return .failure(PageRefusal(reason)) }
            return .failure(PageRefusal("the BPF programs are not loaded"))
        }
        let capacity = UInt32(monitor.pageVMCapacity)
        guard usedIndices.count < Int(capacity) else {
            return .failure(PageRefusal("all \(capacity) BPF-map pages are in use (vm_pages is sized from --max-vms)"))
        }
        var index = nextIndex % capacity
        while usedIndices.contains(index) { index = (index + 1) % capacity }
        let map: BPFPageMap
        do {
            map = try BPFPageMap(byteCount: SharedPageABI.regionSize(vcpuCount: session.vcpuCount))
        } catch {
            return .failure(PageRefusal("\(error)"))
        }
        usedIndices.insert(index)
        nextIndex = (index + 1) % capacity
        return .success((map, index))
    }

    /// Why a VM got a memfd page.
    struct PageRefusal: Error, CustomStringConvertible {
        var description: String
        init(_ description: String) { self.description = description }
    }

    /// Hands `session`'s BPF-map page to the programs: its caps, the page,
    /// then each vCPU thread's slot. On failure the page stays the VM's
    /// (the VMM maps it either way) but no program reads it; logged.
    func install(_ session: VMSession, region: SharedRegion) {
        guard let monitor, case .bpfMap(let map, let index, _) = region.backing else { return }
        do {
            try monitor.installVM(
                index: index, vmID: session.id, vcpuCount: session.vcpuCount, caps: GuestValueCaps(vm: session.model),
                page: map)
            for (vcpu, thread) in session.threads.enumerated() {
                try monitor.bindThread(tid: thread.target.tid, vmIndex: index, vcpu: vcpu, vmID: session.id)
            }
        } catch {
            logger.warning("BPF programs cannot read this VM's page", metadata: ["vm": "\(session.name)", "error": "\(error)"])
            monitor.removeVM(index: index, tids: session.threads.map(\.target.tid))
        }
    }

    /// Takes a detached VM's page away from the programs and frees its index.
    func release(_ session: VMSession) {
        guard let region = session.shared, let index = region.bpfIndex else { return }
        monitor?.removeVM(index: index, tids: session.threads.map(\.target.tid))
        releaseIndex(index)
    }

    /// Frees an index whose page never reached the programs.
    func releaseIndex(_ index: UInt32) { usedIndices.remove(index) }

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
