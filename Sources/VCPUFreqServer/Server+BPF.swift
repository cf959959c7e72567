import Glibc
import Logging
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

extension ServerConfiguration {
    /// What the daemon does with the BPF programs (docs/bpf.md).
    public struct BPFSettings: Sendable, Equatable {
        /// Where the util-hint map is pinned.
        public enum Pin: Sendable, Equatable {
            /// In the instance's pin directory (`DaemonInstance.utilHintPinPath`):
            /// `/sys/fs/bpf/vcpufreq/util_hint` for the default state directory.
            case instance
            /// At this path (its directory is locked like the instance's).
            case path(String)
            /// Not pinned, and then no bpf-map clamp (a scheduler could not find the map).
            case none
        }

        /// Load the programs at start (when privileges allow: root, or
        /// CAP_BPF + CAP_PERFMON). Off: no host truth, no bpf-map clamp.
        public var enabled = true
        public var utilHintPin = Pin.instance
        /// Count KVM exits per vCPU thread (tracepoint/kvm/*).
        public var countKVMExits = true
        /// VMs that can have a BPF-map shared page at once (the daemon sets
        /// it to --max-vms).
        public var maximumPageVMs = 64

        public init(enabled: Bool = true, utilHintPin: Pin = .instance) {
            self.enabled = enabled
            self.utilHintPin = utilHintPin
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

    /// The pin directory, locked while this daemon pins there (another
    /// daemon pinning in it would reuse, and at its exit unpin, our maps).
    private var pinLock: InstanceLock?
    /// The pins this daemon owns: it created the map, or its instance's
    /// previous daemon did (`BPFPinRecord`). A pin it reused from another
    /// program (a scheduler that pinned the map first) is not its own.
    private var ownPins: [(path: String, id: UInt32)] = []
    /// Where ownership is recorded for the next daemon of the instance
    /// (nil with --dry-run, which keeps no state).
    private let recordPath: String?
    /// The instance's own pin directory, removed at exit when empty (nil
    /// for the default or a chosen `--bpf-pin-path`: those stay).
    private let instanceDirectory: String?

    /// Loads the programs (never fatal: without privileges the daemon runs
    /// on without them). Only a pin directory locked by another daemon
    /// stops the start, with a message naming it and the holder.
    init(
        settings: ServerConfiguration.BPFSettings, pinPath: String?, instance: DaemonInstance, host: HostTopology,
        recordsPins: Bool, stoppingWaitMilliseconds: Int = 0, logger: Logger
    ) throws(ServerError) {
        self.logger = logger
        recordPath = recordsPins ? instance.pinRecordPath : nil
        instanceDirectory = settings.utilHintPin == .instance && instance.name != nil ? instance.pinDirectory : nil
        guard settings.enabled else {
            monitor = nil
            summary = "not loaded: switched off (--no-bpf)"
            capability = .unavailable("the BPF programs are switched off (--no-bpf)")
            pageCapability = .unavailable("the BPF programs are switched off (--no-bpf): shared pages are memfds")
            logger.notice("BPF programs switched off: no host truth in status, no bpf-map clamp, memfd shared pages")
            return
        }
        // What is pinned at each of our maps' paths before we load (the
        // util-hint map and the shared-page maps beside it, `BPFPins`).
        var pinnedBefore: [String: UInt32] = [:]
        if let pinPath {
            pinLock = try Self.lockPinDirectory(of: pinPath, wait: stoppingWaitMilliseconds, logger: logger)
            let pins = BPFPins(utilHintPath: pinPath)
            for name in BPFPins.mapNames { pinnedBefore[pins.path(of: name)] = PinnedMaps.id(at: pins.path(of: name)) }
        }
        var configuration = VCPUThreadMonitor.Configuration()
        configuration.utilHintPinPath = pinPath
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
        if status.isRunning { claim(status.pinnedMaps, pinnedBefore: pinnedBefore) }
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

    /// Creates and locks the pin directory. Nothing else can fail the start:
    /// without privileges or bpffs the monitor reports why it did not pin.
    private static func lockPinDirectory(of pinPath: String, wait: Int, logger: Logger) throws(ServerError) -> InstanceLock? {
        let directory = pinPath.lastIndex(of: "/").map { String(pinPath[..<$0]) }.map { $0.isEmpty ? "/" : $0 } ?? "."
        do {
            if let mounted = try PinnedMaps.prepareDirectory(directory) { logger.notice("mounted \(mounted) for the BPF pins") }
        } catch {
            logger.debug("BPF pin directory not prepared", metadata: ["directory": "\(directory)", "error": "\(error)"])
            return nil
        }
        do {
            return try InstanceLock.acquire(directory, kind: .directory, stoppingWaitMilliseconds: wait)
        } catch {
            if error.holder != nil {
                throw InstanceLocks.refusal(error, what: "BPF pin directory \(directory)", flag: "--bpf-pin-path")
            }
            logger.warning("cannot lock the BPF pin directory", metadata: ["error": "\(error)"])
            return nil
        }
    }

    /// Decides which of the maps now pinned at `paths` are this daemon's, and records them.
    private func claim(_ paths: [String], pinnedBefore: [String: UInt32]) {
        let boot = BPFPinRecord.currentBootID
        let previous = recordPath.flatMap(BPFPinRecord.read)
        for path in paths {
            guard let id = PinnedMaps.id(at: path) else { continue }
            guard pinnedBefore[path] != id || previous?.names(id: id, path: path, bootID: boot) == true else {
                logger.notice("reusing a map another program pinned; it stays pinned when this daemon stops", metadata: [
                    "path": "\(path)", "map_id": "\(id)",
                ])
                continue
            }
            ownPins.append((path, id))
        }
        guard let recordPath, !ownPins.isEmpty else { return }
        do {
            try BPFPinRecord(bootID: boot, pins: ownPins.map { ($0.id, $0.path) }).write(to: recordPath)
        } catch {
            logger.warning("cannot record the BPF pins", metadata: ["path": "\(recordPath)", "error": "\(error)"])
        }
    }

    /// At exit, after every thread is restored: removes this daemon's pins
    /// while they still name its maps (a pin someone replaced stays), its
    /// instance's pin directory when that is empty, the record, and the
    /// directory lock. Idempotent.
    func finish() {
        for pin in ownPins {
            if PinnedMaps.unpin(pin.path, ifMapID: pin.id) {
                logger.info("unpinned", metadata: ["path": "\(pin.path)", "map_id": "\(pin.id)"])
            } else {
                logger.notice("pin left alone: it no longer names this daemon's map", metadata: ["path": "\(pin.path)"])
            }
        }
        // Also when nothing was pinned (the programs did not load): the
        // directory was made for this instance at start; rmdir leaves it
        // while anything is still pinned in it.
        if pinLock != nil, let instanceDirectory { _ = rmdir(instanceDirectory) }
        if !ownPins.isEmpty, let recordPath { _ = unlink(recordPath) }
        ownPins = []
        pinLock?.release()
        pinLock = nil
    }

    deinit { finish() }

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
