import Logging
import SystemPackage
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// One attached VM: its device model, policy, threads and shared memory.
/// Driven by the server's loop on one thread; every method on the request
/// path (`access`, `kicked`, `poll`, `applyChanges`) allocates nothing and
/// makes a syscall only when an applied hint changes.
final class VMSession {
    let id: UInt32
    let name: String
    let profile: String
    let model: VMModel
    let peer: PeerCredentials
    let controller: ThreadController
    let logger: Logger

    private(set) var device: DeviceModel
    private(set) var policy: PolicyEngine
    /// Per vCPU: the attached thread (snapshot of its originals).
    let threads: [AttachedThread]
    /// Per vCPU: the hint the thread has now (nil: its original attributes).
    private(set) var applied: [HostHint?]
    /// Per vCPU: the last apply failed (kept for the shared page's status flag).
    private(set) var actuationFailed: [Bool]
    private(set) var lastRequests: [GuestRequest?]
    private(set) var shared: SharedRegion?
    /// Why the shared page is a memfd rather than a BPF map (STATUS).
    var sharedPageNote: String?
    private(set) var kicks: KickSchedule
    private(set) var counters: VMCounters
    /// Per vCPU: the host cluster whose frequency `cur_perf` follows.
    let frequencyCluster: [Int]
    /// What `drainChanges` reported, applied after it returns: applying
    /// inside its closure would read `policy` (the host area's capped flag)
    /// while `drainChanges` still holds it for modification, which Swift's
    /// exclusivity check stops with a crash. Allocated once; the policy
    /// reports each vCPU at most once per drain.
    private var drainedVCPUs: [Int]
    private var drainedHints: [HostHint]

    init(
        id: UInt32, name: String, profile: String, model: VMModel, host: HostTopology, peer: PeerCredentials,
        threads: [AttachedThread], controller: ThreadController, logger: Logger
    ) {
        self.id = id
        self.name = name
        self.profile = profile
        self.model = model
        self.peer = peer
        self.threads = threads
        self.controller = controller
        self.logger = logger
        device = DeviceModel(vm: model)
        policy = PolicyEngine(vm: model)
        applied = Array(repeating: nil, count: model.vcpuCount)
        actuationFailed = Array(repeating: false, count: model.vcpuCount)
        lastRequests = Array(repeating: nil, count: model.vcpuCount)
        kicks = KickSchedule(
            mode: model.policy.kickMode, pollIntervalMicroseconds: UInt32(clamping: model.policy.pollIntervalMicroseconds))
        counters = VMCounters(vcpuCount: model.vcpuCount)
        frequencyCluster = model.vcpus.map { CurrentPerformance.hostCluster(of: $0, in: host) }
        drainedVCPUs = Array(repeating: 0, count: model.vcpuCount)
        drainedHints = Array(repeating: .neutral, count: model.vcpuCount)
    }

    var vcpuCount: Int { model.vcpuCount }

    // MARK: Guest accesses (forwarded MMIO)

    /// Serves one forwarded access; returns the device's answer for the reply.
    func access(_ access: GuestAccess, now: UInt64) -> AccessResult {
        var result = device.access(access)
        if let offset = result.sharedPageOffset {
            // A VMM that forwards the shared page instead of mapping it.
            result.value = shared?.memory.emulateAccess(offset: offset, width: access.width, value: access.value) ?? 0
        }
        if let vcpu = result.mirrorChanged, let shared {
            shared.writeMirror(vcpu: vcpu, register: .perftblRd, value: device.mirrorValue(vcpu: vcpu, register: .perftblRd))
        }
        if let request = result.request { submit(request, now: now) }
        if let slot = result.kick { kicked(slot: slot, now: now) }
        applyChanges(now: now)
        return result
    }

    // MARK: Shared page

    /// Creates the shared memory (MAP_SHARED): in `bpfPage` when given (a
    /// BPF-map page), else in a memfd. Kick mode `never` — and `scheduler`
    /// on a BPF-map page — starts polling at once.
    func mapShared(
        mirror: Bool, doorbells: Bool, generation: UInt32, now: UInt64, bpfPage: (map: BPFPageMap, index: UInt32)? = nil
    ) throws(Errno) -> SharedRegion {
        if let shared { return shared }
        let region = try SharedRegion(
            vm: model, name: name, mirror: mirror, doorbells: doorbells, generation: generation, bpfPage: bpfPage)
        shared = region
        kicks = KickSchedule(
            mode: model.policy.kickMode.effective(bpfMapPage: region.kind == .bpfMap),
            pollIntervalMicroseconds: UInt32(clamping: model.policy.pollIntervalMicroseconds))
        for vcpu in 0..<vcpuCount {
            region.refreshMirror(vcpu: vcpu, device: device)
            publishHostArea(vcpu: vcpu)
        }
        region.host.setStatus(controller.applies ? .active : [.active, .degraded])
        if kicks.start(now: now) == .startPolling { region.host.suppressKicks(slots: 0..<vcpuCount) }
        return region
    }

    /// A doorbell eventfd of `slot` became readable.
    func doorbellRang(slot: Int, now: UInt64) {
        kicked(slot: slot, now: now)
        applyChanges(now: now)
    }

    /// A doorbell rang for `slot` (its eventfd, or a forwarded doorbell
    /// write). Without a shared page there is nothing to read and no kick
    /// to suppress: the kick schedule is left alone (polling a page that
    /// does not exist would only spin the timer).
    private func kicked(slot: Int, now: UInt64) {
        guard slot >= 0, slot < vcpuCount else { return }
        counters.kicks[slot] &+= 1
        guard let shared else { return }
        consume(slot: slot, now: now)
        if kicks.kicked(now: now) == .startPolling {
            shared.host.suppressKicks(slots: 0..<vcpuCount)
            counters.suppressions &+= 1
        }
    }

    /// Reads every slot (kicks suppressed); returns the number with news.
    /// Always moves the schedule on, so the next poll is an interval away.
    @discardableResult
    func poll(now: UInt64) -> Int {
        counters.polls &+= 1
        var updated = 0
        if shared != nil {
            for slot in 0..<vcpuCount where consume(slot: slot, now: now) { updated += 1 }
        }
        if kicks.polled(now: now, updatedSlots: updated) == .stopPolling, let shared {
            // Dekker re-check: whatever raced with the flag change is consumed here.
            for slot in shared.host.requestKicks(slots: 0..<vcpuCount) { consume(slot: slot, now: now) }
        }
        applyChanges(now: now)
        return updated
    }

    @discardableResult
    private func consume(slot: Int, now: UInt64) -> Bool {
        guard let shared else { return false }
        switch shared.host.consume(slot: slot) {
        case .request(let request, _, let faults):
            if !faults.isEmpty { counters.slotFaults &+= 1 }
            submit(request, now: now)
            return true
        case .busy:
            counters.slotBusy &+= 1
            return false
        case .unchanged, .noSuchSlot:
            return false
        }
    }

    // MARK: Policy

    private func submit(_ request: GuestRequest, now: UInt64) {
        guard request.vcpu >= 0, request.vcpu < vcpuCount else { return }
        lastRequests[request.vcpu] = request
        counters.requests[request.vcpu] &+= 1
        policy.submit(request, now: now)
    }

    /// The earliest time `advance` has work: a policy timer or a poll.
    var nextDeadline: UInt64? {
        switch (policy.nextDeadline, kicks.nextPoll) {
        case (let a?, let b?): return min(a, b)
        case (let a?, nil): return a
        case (nil, let b?): return b
        case (nil, nil): return nil
        }
    }

    /// Runs what is due by `now`: the policy's timers and a poll.
    func advance(now: UInt64) {
        if let due = kicks.nextPoll, due <= now { poll(now: now) }
        policy.advance(to: now)
        applyChanges(now: now)
    }

    /// Applies every hint the policy changed: a syscall per changed facet,
    /// then the shared page host area and the util-hint `applied_util`.
    func applyChanges(now: UInt64) {
        guard policy.hasChanges else { return }
        var drained = 0
        policy.drainChanges { vcpu, hint in
            guard drained < drainedVCPUs.count else { return }
            drainedVCPUs[drained] = vcpu
            drainedHints[drained] = hint
            drained += 1
        }
        for index in 0..<drained {
            apply(drainedHints[index], vcpu: drainedVCPUs[index])
        }
    }

    private func apply(_ hint: HostHint, vcpu: Int) {
        guard vcpu >= 0, vcpu < vcpuCount else { return }
        do throws(ThreadControlError) {
            try controller.apply(hint, previous: applied[vcpu], to: threads[vcpu])
            actuationFailed[vcpu] = false
        } catch {
            actuationFailed[vcpu] = true
            if error.threadGone {
                counters.threadsGone &+= 1
            } else {
                counters.actuationErrors[vcpu] &+= 1
                if counters.actuationErrors[vcpu] == 1 {
                    logger.warning("cannot apply hint", metadata: ["vm": "\(name)", "vcpu": "\(vcpu)", "error": "\(error)"])
                }
            }
        }
        applied[vcpu] = hint
        counters.hintsApplied[vcpu] &+= 1
        device.setAppliedUtilization(vcpu: vcpu, hint.utilMin)
        publishHostArea(vcpu: vcpu)
    }

    private func publishHostArea(vcpu: Int) {
        guard let shared else { return }
        var flags: SharedPageABI.HostSlotFlags = []
        if policy.state(vcpu: vcpu).isCapped { flags.insert(.capped) }
        if actuationFailed[vcpu] { flags.insert(.actuationFailed) }
        shared.host.publish(
            slot: vcpu, currentPerformanceKHz: device.currentPerformanceKHz(vcpu: vcpu),
            hint: applied[vcpu] ?? policy.appliedHint(vcpu: vcpu), flags: flags)
    }

    // MARK: Host frequency

    /// New current frequencies per host cluster (kHz); updates cur_perf of
    /// the vCPUs whose cluster changed, their mirror window and host area.
    func hostFrequenciesChanged(_ clusterKHz: [UInt32], host: HostTopology) {
        for vcpu in 0..<vcpuCount {
            let cluster = frequencyCluster[vcpu]
            guard cluster < clusterKHz.count else { continue }
            let value = CurrentPerformance.kHz(
                vcpu: model.vcpus[vcpu], hostCapacity: host.clusters[cluster].capacity,
                hostMaxKHz: UInt32(clamping: host.clusters[cluster].maxFrequencyKHz), hostCurrentKHz: clusterKHz[cluster])
            guard device.setCurrentPerformance(vcpu: vcpu, kHz: value) else { continue }
            shared?.writeMirror(vcpu: vcpu, register: .curPerf, value: value)
            publishHostArea(vcpu: vcpu)
        }
    }

    // MARK: Detach

    /// Restores every thread (errors counted, ESRCH quiet); returns how many
    /// were restored: a thread that has exited had nothing to restore and is
    /// counted as gone instead. After this the session must not apply anything.
    func restoreAll() -> Int {
        var restored = 0
        for thread in threads {
            do {
                try controller.restore(thread)
                if controller.procfs.isThread(thread.target.tid, ofProcess: thread.target.pid) {
                    restored += 1
                } else {
                    counters.threadsGone &+= 1
                }
            } catch {
                if !error.threadGone {
                    counters.restoreErrors &+= 1
                    logger.warning("cannot restore thread", metadata: ["vm": "\(name)", "tid": "\(thread.target.tid)", "error": "\(error)"])
                }
            }
        }
        counters.restores &+= UInt64(restored)
        shared?.host.setStatus([])
        return restored
    }
}

/// Counters of one VM, allocated at attach; wrapping arithmetic.
struct VMCounters {
    var requests: [UInt64]
    var kicks: [UInt64]
    var hintsApplied: [UInt64]
    var actuationErrors: [UInt64]
    var polls: UInt64 = 0
    var suppressions: UInt64 = 0
    var slotFaults: UInt64 = 0
    var slotBusy: UInt64 = 0
    var threadsGone: UInt64 = 0
    var restores: UInt64 = 0
    var restoreErrors: UInt64 = 0

    /// Each array gets its own storage: sharing one (kicks = requests) would
    /// make the first write to each copy it, an allocation on the request path.
    init(vcpuCount: Int) {
        requests = Array(repeating: 0, count: vcpuCount)
        kicks = Array(repeating: 0, count: vcpuCount)
        hintsApplied = Array(repeating: 0, count: vcpuCount)
        actuationErrors = Array(repeating: 0, count: vcpuCount)
    }
}
