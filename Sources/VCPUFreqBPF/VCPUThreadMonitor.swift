import Glibc
import Synchronization
import VCPUFreqCore

/// Host-side truth about vCPU threads, and the util-hint map, through the BPF
/// programs of bpf/vcpufreq.bpf.c.
///
/// `start()` loads what it can and never throws: without privileges (root, or
/// CAP_BPF + CAP_PERFMON) the status says why and the daemon goes on without
/// BPF. Register each vCPU thread with `track(tid:)`; read `stats(tid:)` and
/// `exits(tid:)`; keep the pinned util-hint map current with `setHint`.
/// Safe to use from several threads (one lock; every call is a syscall or two,
/// no allocation on the hint path).
public final class VCPUThreadMonitor: Sendable {
    public struct Configuration: Sendable {
        /// The BPF object to load (the tests pass corrupt ones).
        public var objectBytes: [UInt8] = BundledObject.vcpufreq
        public var objectName: String = BundledObject.vcpufreqName
        /// Where to pin the util-hint map; nil: do not pin (the map then dies
        /// with the monitor). The tests use their own paths.
        public var utilHintPinPath: String? = VCPUThreadMonitor.defaultUtilHintPinPath
        /// Where tracepoints are looked up before attaching tracepoint/*
        /// programs (libbpf itself uses /sys/kernel/tracing).
        public var tracefsPath: String = FileSystems.defaultTracefsPath
        /// Where bpffs must be mounted for pinning.
        public var bpffsPath: String = FileSystems.defaultBPFFSPath
        /// Mount tracefs and bpffs at those paths when they are not mounted.
        public var mountFileSystems = true
        /// Attach the KVM exit counters (tracepoint/kvm/*).
        public var countKVMExits = true
        /// Size of the tracked-threads map (VCPUFREQ_MAX_TRACKED_THREADS);
        /// also of vcpu_threads.
        public var maxTrackedThreads: UInt32 = 4096
        /// VMs with a BPF-map shared page at once: entries of vm_pages and
        /// vm_caps (VCPUFREQ_MAX_PAGE_VMS; the daemon passes --max-vms).
        public var maxPageVMs: UInt32 = 64

        public init() {}
    }

    /// VCPUFREQ_UTIL_HINT_PIN_PATH of vcpufreq_bpf.h.
    public static let defaultUtilHintPinPath = "/sys/fs/bpf/vcpufreq/util_hint"

    /// Where each map is pinned (nil: nothing is pinned).
    public var pins: BPFPins? { configuration.utilHintPinPath.map(BPFPins.init(utilHintPath:)) }

    public let configuration: Configuration

    private struct State {
        var status = MonitorStatus()
        var object: BPFObject?
        var links: [BPFLink] = []
        var threadsFD: Int32 = -1
        var hintFD: Int32 = -1
        /// The shared-page maps (bpf/vcpufreq_slot.h).
        var vmPagesFD: Int32 = -1
        var vmCapsFD: Int32 = -1
        var vcpuThreadsFD: Int32 = -1
        var cpuInfoFD: Int32 = -1
        /// The sequence last written per util-hint entry: the daemon is the
        /// map's only writer, so after the first write of an entry (which
        /// reads it, to continue a previous daemon's numbering) an update is
        /// one syscall. Capacity reserved at start: no allocation per write.
        var hintSequences: [UInt32: UInt32] = [:]
    }

    private let state = Mutex(State())

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    deinit { stop() }

    public var status: MonitorStatus { state.withLock { $0.status } }

    // MARK: - Start and stop

    /// Loads the object and attaches every program whose hook exists. Calling
    /// it while running changes nothing. Never throws: the returned (and
    /// recorded) status says what is attached, what is missing and why, or why
    /// nothing could be loaded.
    @discardableResult
    public func start() -> MonitorStatus {
        state.withLock { state in
            if state.status.isRunning { return state.status }
            var fresh = State()
            do {
                // A map of another layout pinned where one of ours goes (an
                // older vcpufreq?): that map runs unpinned rather than nothing
                // at all, and the status says so.
                var unpinned: [(name: String, reason: String)] = []
                while true {
                    do {
                        try load(into: &fresh, pinning: BPFPins.mapNames.filter { name in !unpinned.contains { $0.name == name } })
                        break
                    } catch BPFError.loadFailed(_, let map?, let reason, _)
                        where pins != nil && BPFPins.mapNames.contains(map) && !unpinned.contains(where: { $0.name == map })
                    {
                        unpinned.append((map, reason))
                        let mounted = fresh.status.mounted
                        fresh = State()
                        fresh.status.mounted = mounted
                    }
                }
                for (name, reason) in unpinned {
                    fresh.status.missing.append(
                        .init(
                            program: "-", target: "pin \(pins?.path(of: name) ?? name)",
                            reason: "the map pinned there does not fit this one (\(reason)); remove it to pin this one"))
                }
                fresh.status.state = .running
            } catch {
                // Drop what was loaded; keep the record of what was mounted.
                let mounted = fresh.status.mounted
                fresh = State()
                fresh.status.mounted = mounted
                fresh.status.state = .failed(
                    error as? BPFError ?? .wrongState(operation: "start", reason: "\(error)"))
            }
            state = fresh
            return state.status
        }
    }

    /// Loads the object, pinning the maps named in `pinning` (of `BPFPins.mapNames`).
    private func load(into state: inout State, pinning: [String]) throws {
        let object = try BPFObject(bytes: configuration.objectBytes, name: configuration.objectName)
        try object.setMaxEntries(configuration.maxTrackedThreads, map: LibBPF.threadsMapName)
        try object.setMaxEntries(configuration.maxTrackedThreads, map: LibBPF.vcpuThreadsMapName)
        try object.setMaxEntries(max(configuration.maxPageVMs, 1), map: LibBPF.vmPagesMapName)
        try object.setMaxEntries(max(configuration.maxPageVMs, 1), map: LibBPF.vmCapsMapName)

        if let pins, !pinning.isEmpty {
            if let problem = prepareBPFFS(mounted: &state.status.mounted) {
                state.status.missing.append(.init(program: "-", target: "pin \(pins.directory)", reason: problem))
            } else {
                for name in pinning {
                    try object.setPinPath(pins.path(of: name), map: name)
                    state.status.pinnedMaps.append(pins.path(of: name))
                }
                if pinning.contains(LibBPF.utilHintMapName) { state.status.utilHintPinPath = pins.utilHintPath }
            }
        }

        let tracefsProblem = prepareTracefs(mounted: &state.status.mounted)
        var toAttach: [BPFObject.Program] = []
        for program in object.programs {
            if let problem = tracepointProblem(program.section, tracefsProblem: tracefsProblem) {
                // Off before load: its CO-RE relocations may name types that only
                // exist with the hook (trace_event_raw_kvm_* come with KVM).
                try object.setAutoload(false, program: program.name)
                state.status.missing.append(.init(program: program.name, target: program.section, reason: problem))
            } else {
                toAttach.append(program)
            }
        }

        try object.load()
        for program in toAttach {
            do {
                let link = try object.attach(program: program.name)
                state.links.append(link)
                state.status.attached.append(.init(program: program.name, target: program.section))
            } catch BPFError.attachFailed(_, let target, let reason) {
                state.status.missing.append(.init(program: program.name, target: target, reason: reason))
            }
        }
        state.threadsFD = try object.map(named: LibBPF.threadsMapName).fd
        state.hintFD = try object.map(named: LibBPF.utilHintMapName).fd
        state.vmPagesFD = try object.map(named: LibBPF.vmPagesMapName).fd
        state.vmCapsFD = try object.map(named: LibBPF.vmCapsMapName).fd
        state.vcpuThreadsFD = try object.map(named: LibBPF.vcpuThreadsMapName).fd
        state.cpuInfoFD = try object.map(named: LibBPF.cpuInfoMapName).fd
        Self.clearSharedPageMaps(state, vms: max(configuration.maxPageVMs, 1), threads: Int(configuration.maxTrackedThreads))
        state.hintSequences.reserveCapacity(Int(configuration.maxTrackedThreads))
        state.object = object
    }

    /// Pinned shared-page maps a previous monitor left describe VMs and
    /// threads this one does not serve: this monitor owns them from now on.
    private static func clearSharedPageMaps(_ state: State, vms: UInt32, threads: Int) {
        for tid in LibBPF.keys(fd: state.vcpuThreadsFD, limit: threads) {
            var key = tid
            _ = LibBPF.delete(fd: state.vcpuThreadsFD, key: &key)
        }
        for index in 0..<vms {
            _ = LibBPF.setPage(outerFD: state.vmPagesFD, index: index, pageFD: nil)
            _ = LibBPF.setCaps(fd: state.vmCapsFD, index: index, vmID: 0, vcpuCount: 0, caps: nil)
        }
    }

    /// nil when bpffs is usable at `bpffsPath` (mounting it if allowed), else why not.
    private func prepareBPFFS(mounted: inout [String]) -> String? {
        let path = configuration.bpffsPath
        if FileSystems.mountedType(at: path) == "bpf" { return nil }
        guard configuration.mountFileSystems else { return "bpffs is not mounted at \(path)" }
        do {
            if try FileSystems.ensureMounted(type: "bpf", source: "bpf", at: path) {
                mounted.append("bpf at \(path)")
            }
            return nil
        } catch {
            return "\(error)"
        }
    }

    /// nil when tracefs is usable at `tracefsPath` (mounting it if allowed), else why not.
    private func prepareTracefs(mounted: inout [String]) -> String? {
        let path = configuration.tracefsPath
        if FileSystems.exists(path + "/events") { return nil }
        guard configuration.mountFileSystems else { return "tracefs is not mounted at \(path)" }
        do {
            if try FileSystems.ensureMounted(type: "tracefs", source: "nodev", at: path) {
                mounted.append("tracefs at \(path)")
            }
            return FileSystems.exists(path + "/events") ? nil : "tracefs at \(path) has no events directory"
        } catch {
            return "\(error)"
        }
    }

    /// Why a program with this section cannot be attached here, or nil.
    /// Only classic tracepoints are checked (tp_btf needs no tracefs).
    private func tracepointProblem(_ section: String, tracefsProblem: String?) -> String? {
        let parts = section.split(separator: "/")
        guard parts.count == 3, parts[0] == "tracepoint" || parts[0] == "tp" else { return nil }
        if parts[1] == "kvm" && !configuration.countKVMExits { return "KVM exit counting is switched off" }
        if let tracefsProblem { return tracefsProblem }
        let directory = "\(configuration.tracefsPath)/events/\(parts[1])/\(parts[2])"
        guard FileSystems.exists(directory) else {
            return "no tracepoint \(parts[1])/\(parts[2]) in \(configuration.tracefsPath)"
                + (parts[1] == "kvm" ? " (KVM not loaded, or this kernel does not have it)" : "")
        }
        return nil
    }

    /// Detaches every program and closes the object. The pinned util-hint map
    /// stays (with its hints) for the next start and for its readers.
    public func stop() {
        state.withLock { state in
            guard state.object != nil else { return }
            for link in state.links { link.destroy() }
            var stopped = MonitorStatus()
            stopped.state = .stopped
            stopped.mounted = state.status.mounted
            state = State()
            state.status = stopped
        }
    }

    /// Removes the pinned util-hint map from bpffs (the daemon's "reset"; and
    /// tests clean up with it). The map itself lives on while loaded.
    public func unpinUtilHintMap() throws {
        guard let path = configuration.utilHintPinPath else { return }
        try state.withLock { state in
            if unlink(path) != 0 && errno != ENOENT {
                throw BPFError.mapOperationFailed(
                    map: LibBPF.utilHintMapName, operation: "unpin \(path)", reason: LibBPF.reason(errno: errno))
            }
            state.status.utilHintPinPath = nil
        }
    }

    /// Removes every pin of this monitor's maps (tests clean up with it).
    public func unpinAll() {
        guard let pins else { return }
        state.withLock { state in
            for name in BPFPins.mapNames { _ = unlink(pins.path(of: name)) }
            state.status.utilHintPinPath = nil
            state.status.pinnedMaps = []
        }
    }

    // MARK: - Tracked threads

    /// TIDs are positive; 0 is every CPU's idle task and is never tracked.
    private static func key(_ tid: Int32) throws -> UInt32 {
        guard tid > 0 else {
            throw BPFError.mapOperationFailed(map: LibBPF.threadsMapName, operation: "key", reason: "TID \(tid) is not a thread")
        }
        return UInt32(tid)
    }

    private enum MapKind { case threads, hints }

    /// Runs `body` with the map's fd under the lock, so `stop()` cannot close
    /// the fd (and the number be reused) in the middle. `operation` names the
    /// call in an error; it is only built then (no String per hint update).
    private func withMap<T: Sendable>(
        _ map: MapKind, _ operation: @autoclosure () -> String, _ body: (Int32) throws -> T
    ) throws -> T {
        try state.withLock { state in
            let descriptor = map == .threads ? state.threadsFD : state.hintFD
            guard descriptor >= 0 else { throw Self.notRunning(state, operation()) }
            return try body(descriptor)
        }
    }

    /// The error for a map operation while no object is loaded: says why.
    private static func notRunning(_ state: State, _ operation: String) -> BPFError {
        switch state.status.state {
        case .failed(let error): return BPFError.wrongState(operation: operation, reason: "the BPF monitor is not running: \(error)")
        default: return BPFError.wrongState(operation: operation, reason: "the BPF monitor is not running")
        }
    }

    private static func fail(_ map: String, _ operation: String, _ code: Int32) -> BPFError {
        .mapOperationFailed(map: map, operation: operation, reason: LibBPF.reason(errno: code))
    }

    /// Starts counting for `tid` (a thread of any process). Tracking a tracked
    /// thread keeps its counters.
    /// - Throws: `BPFError.mapOperationFailed` when the map is full (E2BIG).
    public func track(tid: Int32) throws {
        let key = try Self.key(tid)
        try withMap(.threads, "track(tid: \(tid))") { fd in
            let code = LibBPF.insertThread(fd: fd, tid: key)
            guard code == 0 else { throw Self.fail(LibBPF.threadsMapName, "track \(tid)", code) }
        }
    }

    /// Stops counting for `tid` and forgets its counters; returns whether it was tracked.
    @discardableResult
    public func untrack(tid: Int32) throws -> Bool {
        let key = try Self.key(tid)
        return try withMap(.threads, "untrack(tid: \(tid))") { fd in
            var k = key
            let code = LibBPF.delete(fd: fd, key: &k)
            if code == ENOENT { return false }
            guard code == 0 else { throw Self.fail(LibBPF.threadsMapName, "untrack \(tid)", code) }
            return true
        }
    }

    /// The scheduling counters of `tid` since it was tracked; nil when untracked.
    public func stats(tid: Int32) throws -> ThreadStats? {
        try record(tid)?.stats
    }

    /// The KVM exits of `tid` since it was tracked; nil when untracked.
    public func exits(tid: Int32) throws -> ExitCounts? {
        try record(tid)?.exits
    }

    /// Both, from one lookup.
    func record(_ tid: Int32) throws -> (stats: ThreadStats, exits: ExitCounts)? {
        let key = try Self.key(tid)
        return try withMap(.threads, "stats(tid: \(tid))") { fd in
            guard let result = LibBPF.readThread(fd: fd, tid: key) else {
                throw Self.fail(LibBPF.threadsMapName, "lookup \(tid)", errno)
            }
            return result
        }
    }

    // MARK: - Util hints

    /// Writes the hint of `tid` into the util-hint map with the next sequence
    /// number of that entry (1 for a new entry) and returns the sequence.
    @discardableResult
    public func setHint(tid: Int32, _ hint: UtilHint) throws -> UInt32 {
        let key = try Self.key(tid)
        return try state.withLock { state in
            guard state.hintFD >= 0 else { throw Self.notRunning(state, "setHint(tid: \(tid))") }
            let result = Self.writeNext(fd: state.hintFD, key: key, hint, sequences: &state.hintSequences)
            guard result.code == 0 else {
                throw Self.fail(LibBPF.utilHintMapName, "\(result.failedStep) \(tid)", result.code)
            }
            return result.sequence
        }
    }

    /// Writes `hint` with the entry's next sequence: one syscall once the
    /// entry's sequence is known (`State.hintSequences`), a lookup first for
    /// an entry this monitor has not written yet. Nothing allocated. The
    /// daemon is the only writer, so this needs no atomicity beyond the lock.
    private static func writeNext(
        fd: Int32, key: UInt32, _ hint: UtilHint, sequences: inout [UInt32: UInt32]
    ) -> (code: Int32, sequence: UInt32, failedStep: StaticString) {
        let previous: UInt32
        if let known = sequences[key] {
            previous = known
        } else {
            guard let entry = LibBPF.readHint(fd: fd, tid: key) else { return (errno, 0, "lookup") }
            previous = entry?.sequence ?? 0
        }
        var next = hint
        next.sequence = previous &+ 1
        let code = LibBPF.writeHint(fd: fd, tid: key, next)
        if code == 0 { sequences[key] = next.sequence } else { sequences.removeValue(forKey: key) }
        return (code, code == 0 ? next.sequence : 0, "update")
    }

    /// `setHint` for an actuator's hot path: an errno instead of a thrown
    /// `BPFError` (0 = written), nothing allocated. EINVAL for a TID that is
    /// not a thread, ENODEV while the monitor is not running (stopped, or it
    /// never loaded: its status says why).
    public func writeHint(tid: Int32, _ hint: UtilHint) -> (errno: Int32, sequence: UInt32) {
        guard tid > 0 else { return (EINVAL, 0) }
        return state.withLock { state in
            guard state.hintFD >= 0 else { return (ENODEV, 0) }
            let result = Self.writeNext(fd: state.hintFD, key: UInt32(tid), hint, sequences: &state.hintSequences)
            return (result.code, result.sequence)
        }
    }

    /// `removeHint` for an actuator: 0 when the entry is gone (or never
    /// was), else the errno; EINVAL and ENODEV as for `writeHint`.
    public func deleteHint(tid: Int32) -> Int32 {
        guard tid > 0 else { return EINVAL }
        return state.withLock { state in
            guard state.hintFD >= 0 else { return ENODEV }
            var key = UInt32(tid)
            state.hintSequences.removeValue(forKey: key)
            let code = LibBPF.delete(fd: state.hintFD, key: &key)
            return code == ENOENT ? 0 : code
        }
    }

    /// The hint of `tid`, or nil when it has none.
    public func hint(tid: Int32) throws -> UtilHint? {
        let key = try Self.key(tid)
        return try withMap(.hints, "hint(tid: \(tid))") { fd in
            guard let result = LibBPF.readHint(fd: fd, tid: key) else {
                throw Self.fail(LibBPF.utilHintMapName, "lookup \(tid)", errno)
            }
            return result
        }
    }

    /// Removes the hint of `tid`; returns whether it had one.
    @discardableResult
    public func removeHint(tid: Int32) throws -> Bool {
        let key = try Self.key(tid)
        return try state.withLock { state in
            guard state.hintFD >= 0 else { throw Self.notRunning(state, "removeHint(tid: \(tid))") }
            state.hintSequences.removeValue(forKey: key)
            var k = key
            let code = LibBPF.delete(fd: state.hintFD, key: &k)
            if code == ENOENT { return false }
            guard code == 0 else { throw Self.fail(LibBPF.utilHintMapName, "delete \(tid)", code) }
            return true
        }
    }

    // MARK: - Shared pages as BPF maps (bpf/vcpufreq_slot.h)

    /// Entries of vm_pages and vm_caps: VM indices are 0..<this.
    public var pageVMCapacity: Int { Int(max(configuration.maxPageVMs, 1)) }

    /// Whether the shared-page maps are loaded (the monitor is running).
    public var offersPageMaps: Bool { state.withLock { $0.vmPagesFD >= 0 } }

    /// The shared-page maps' descriptors, valid under the lock.
    private struct PageMapFDs: Sendable {
        var vmPagesFD, vmCapsFD, vcpuThreadsFD, cpuInfoFD: Int32
    }

    private func withPageMaps<T: Sendable>(_ operation: @autoclosure () -> String, _ body: (PageMapFDs) throws -> T) throws -> T {
        try state.withLock { state in
            guard state.vmPagesFD >= 0 else { throw Self.notRunning(state, operation()) }
            return try body(PageMapFDs(
                vmPagesFD: state.vmPagesFD, vmCapsFD: state.vmCapsFD, vcpuThreadsFD: state.vcpuThreadsFD,
                cpuInfoFD: state.cpuInfoFD))
        }
    }

    /// Makes `page` the shared page of VM `vmID` at `index`: its caps
    /// first, then the page (a program that finds the page finds the caps).
    public func installVM(index: UInt32, vmID: UInt32, vcpuCount: Int, caps: GuestValueCaps, page: BPFPageMap) throws {
        try withPageMaps("installVM(\(index))") { state in
            var code = LibBPF.setCaps(
                fd: state.vmCapsFD, index: index, vmID: vmID, vcpuCount: UInt32(clamping: vcpuCount), caps: caps)
            guard code == 0 else { throw Self.fail(LibBPF.vmCapsMapName, "update \(index)", code) }
            code = LibBPF.setPage(outerFD: state.vmPagesFD, index: index, pageFD: page.descriptor.rawValue)
            guard code == 0 else { throw Self.fail(LibBPF.vmPagesMapName, "update \(index)", code) }
        }
    }

    /// Tells the programs that thread `tid` is vCPU `vcpu` of the VM at `index`.
    public func bindThread(tid: Int32, vmIndex: UInt32, vcpu: Int, vmID: UInt32) throws {
        let key = try Self.key(tid)
        try withPageMaps("bindThread(\(tid))") { state in
            let code = LibBPF.setVCPUReference(
                fd: state.vcpuThreadsFD, tid: key, vmIndex: vmIndex, vcpu: UInt32(clamping: vcpu), vmID: vmID)
            guard code == 0 else { throw Self.fail(LibBPF.vcpuThreadsMapName, "update \(tid)", code) }
        }
    }

    /// Forgets the VM at `index` and its threads: threads first, then the
    /// page, then the caps. Errors are ignored (nothing to restore).
    public func removeVM(index: UInt32, tids: [Int32]) {
        state.withLock { state in
            guard state.vmPagesFD >= 0 else { return }
            for tid in tids where tid > 0 {
                var key = UInt32(tid)
                _ = LibBPF.delete(fd: state.vcpuThreadsFD, key: &key)
            }
            _ = LibBPF.setPage(outerFD: state.vmPagesFD, index: index, pageFD: nil)
            _ = LibBPF.setCaps(fd: state.vmCapsFD, index: index, vmID: 0, vcpuCount: 0, caps: nil)
        }
    }

    /// Writes cpu_info: each CPU of the table with its cluster and capacity,
    /// every other CPU below the highest listed cleared.
    public func setCPUTable(_ table: HostCPUTable) throws {
        try withPageMaps("setCPUTable") { state in
            var next = 0
            for entry in table.entries {
                while next < entry.cpu {
                    _ = LibBPF.setCPUInfo(fd: state.cpuInfoFD, cpu: UInt32(next), cluster: nil, capacity: 0)
                    next += 1
                }
                let code = LibBPF.setCPUInfo(
                    fd: state.cpuInfoFD, cpu: UInt32(entry.cpu), cluster: entry.cluster, capacity: entry.capacity)
                guard code == 0 else { throw Self.fail(LibBPF.cpuInfoMapName, "update \(entry.cpu)", code) }
                next = entry.cpu + 1
            }
        }
    }
}
