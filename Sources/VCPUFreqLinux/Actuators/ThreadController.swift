import SystemPackage
import VCPUFreqCore

/// A vCPU thread under control: what the daemon keeps per vCPU and hands
/// back on every apply, so the hot path needs no lookup.
public struct AttachedThread: Codable, Sendable, Equatable {
    public var target: ThreadTarget
    /// The thread's start time (/proc stat field 22): with the TID it names
    /// this thread and no later one that reuses the TID.
    public var startTime: UInt64
    public var snapshot: ThreadSnapshot
    /// The facets captured at attach (and so restored), with the actuator
    /// that captured each: a restarted daemon with another configuration
    /// still restores with the right one.
    public var facets: [CapturedFacet]

    public init(target: ThreadTarget, startTime: UInt64, snapshot: ThreadSnapshot, facets: [CapturedFacet]) {
        self.target = target
        self.startTime = startTime
        self.snapshot = snapshot
        self.facets = facets
    }
}

/// A facet and the actuator (by name) that captured it.
public struct CapturedFacet: Codable, Equatable, Sendable {
    public var facet: ActuatorFacet
    public var actuator: String
    public init(facet: ActuatorFacet, actuator: String) {
        self.facet = facet
        self.actuator = actuator
    }
}

/// Owns one actuator per facet and drives them: attach captures the
/// original attributes (and journals them before changing anything),
/// apply calls only the facets whose part of the hint changed, restore puts
/// everything back. Use from one thread (the daemon's actuation loop).
public final class ThreadController {
    /// Clamp facet: uclamp, cgroup uclamp, the BPF util-hint map — or none.
    public let clamp: (any ThreadActuator)?
    public let latency: (any ThreadActuator)?
    public let affinity: (any ThreadActuator)?
    /// Records every action; with `applies` false it is all that happens (`--dry-run`).
    public let recorder: RecordingActuator?
    /// false = dry run: capture and record, never change a thread.
    public let applies: Bool
    public let journal: RestoreJournal?
    public let procfs: ProcFS
    /// Actuators that need configuration yet can undo a journal record of
    /// another daemon's configuration (the BPF map actuator while the
    /// programs are loaded): tried by name after our own.
    public let recoveryActuators: [any ThreadActuator]

    /// The order facets are applied in. A stored array: `allCases` would
    /// build a new one on every apply.
    private static let facetOrder: [ActuatorFacet] = [.clamp, .latency, .affinity]

    public private(set) var clampCounters = FacetCounters()
    public private(set) var latencyCounters = FacetCounters()
    public private(set) var affinityCounters = FacetCounters()

    public init(
        clamp: (any ThreadActuator)?, latency: (any ThreadActuator)?, affinity: (any ThreadActuator)?,
        recorder: RecordingActuator? = nil, applies: Bool = true, journal: RestoreJournal? = nil,
        procfs: ProcFS = ProcFS(), recoveryActuators: [any ThreadActuator] = []
    ) {
        precondition(clamp == nil || clamp?.facet == .clamp, "clamp actuator must be of the clamp facet")
        precondition(latency == nil || latency?.facet == .latency, "latency actuator must be of the latency facet")
        precondition(affinity == nil || affinity?.facet == .affinity, "affinity actuator must be of the affinity facet")
        self.clamp = clamp
        self.latency = latency
        self.affinity = affinity
        self.recorder = recorder
        self.applies = applies
        self.journal = journal
        self.procfs = procfs
        self.recoveryActuators = recoveryActuators
    }

    public func counters(for facet: ActuatorFacet) -> FacetCounters {
        switch facet {
        case .clamp: return clampCounters
        case .latency: return latencyCounters
        case .affinity: return affinityCounters
        }
    }

    private func count(_ facet: ActuatorFacet, _ update: (inout FacetCounters) -> Void) {
        switch facet {
        case .clamp: update(&clampCounters)
        case .latency: update(&latencyCounters)
        case .affinity: update(&affinityCounters)
        }
    }

    private func actuator(for facet: ActuatorFacet) -> (any ThreadActuator)? {
        switch facet {
        case .clamp: return clamp
        case .latency: return latency
        case .affinity: return affinity
        }
    }

    // MARK: Attach

    /// Takes control of thread `tid` of process `pid` (nil: looked up in
    /// /proc): captures each facet's original attributes, journals them,
    /// then prepares the facets (the cgroup actuator moves the thread).
    public func attach(
        tid: Int32, pid: Int32? = nil, vm: String, vcpu: Int, domain: Int
    ) throws(ThreadControlError) -> AttachedThread {
        func failure(_ facet: ActuatorFacet, _ actuator: String, _ errno: Errno) -> ThreadControlError {
            ThreadControlError(operation: .attach, tid: tid, failures: [.init(facet: facet, actuator: actuator, errno: errno)])
        }
        guard let owner = pid ?? procfs.processID(ofThread: tid), procfs.isThread(tid, ofProcess: owner),
            let startTime = procfs.startTime(ofThread: tid, inProcess: owner)
        else {
            throw failure(.clamp, "procfs", .noSuchProcess)
        }
        let target = ThreadTarget(tid: tid, pid: owner, vm: vm, vcpu: vcpu, domain: domain)
        var snapshot = ThreadSnapshot()
        var facets: [CapturedFacet] = []
        for facet in Self.facetOrder {
            guard let actuator = actuator(for: facet) else { continue }
            do {
                try actuator.capture(target, into: &snapshot)
            } catch {
                throw failure(facet, actuator.name, error)
            }
            facets.append(CapturedFacet(facet: facet, actuator: actuator.name))
        }
        let thread = AttachedThread(target: target, startTime: startTime, snapshot: snapshot, facets: facets)
        if let journal, applies {
            do {
                try journal.record(thread)
            } catch {
                throw failure(.clamp, "journal", error)
            }
        }
        try? recorder?.record(.capture, target: target, hint: RecordingActuator.originalHint(snapshot))
        guard applies else { return thread }
        for captured in facets {
            let facet = captured.facet
            guard let actuator = actuator(for: facet) else { continue }
            do {
                try actuator.prepare(target, snapshot: snapshot)
            } catch {
                journal?.remove(thread)
                throw failure(facet, actuator.name, error)
            }
        }
        return thread
    }

    // MARK: Apply (hot path)

    /// Applies `new` to the thread, calling only the facets whose part
    /// changed from `previous` (the hint applied last; nil = none yet).
    /// Every facet is tried even when one fails; all failures are counted
    /// and thrown together. No allocation unless something fails. The
    /// recorder gets a line whenever the hint changed, also in a facet this
    /// host has no actuator for (clamp=none): the record is the hint the
    /// daemon decided, which is what a dry run is for.
    public func apply(_ new: HostHint, previous: HostHint?, to thread: AttachedThread) throws(ThreadControlError) {
        var failures: [ThreadControlError.Failure] = []
        var changedAny = false
        for facet in Self.facetOrder {
            let actuator = actuator(for: facet)
            // An actuator decides what counts as its change (the BPF map also
            // follows latency); a facet without one still records changes.
            guard actuator?.needsApply(new, previous: previous) ?? facet.changed(from: previous, to: new) else {
                if actuator != nil { count(facet) { $0.unchanged += 1 } }
                continue
            }
            changedAny = true
            guard applies, let actuator else { continue }
            do {
                try actuator.apply(new, previous: previous, to: thread.target, snapshot: thread.snapshot)
                count(facet) { $0.applied += 1 }
            } catch {
                count(facet) { error == .noSuchProcess ? ($0.threadGone += 1) : ($0.failed += 1) }
                failures.append(.init(facet: facet, actuator: actuator.name, errno: error))
            }
        }
        if changedAny { try? recorder?.record(.apply, target: thread.target, hint: new) }
        if !failures.isEmpty { throw ThreadControlError(operation: .apply, tid: thread.target.tid, failures: failures) }
    }

    // MARK: Restore

    /// Puts the captured attributes back (every captured facet, whatever
    /// was applied) and removes the journal record. A thread that has exited
    /// has nothing to restore: that is not an error. When a facet fails to
    /// restore, the record stays, so the next daemon start tries again (its
    /// recovery checks the thread's start time: a reused TID is never
    /// touched).
    public func restore(_ thread: AttachedThread) throws(ThreadControlError) {
        var failures: [ThreadControlError.Failure] = []
        try? recorder?.record(.restore, target: thread.target, hint: RecordingActuator.originalHint(thread.snapshot))
        if applies {
            // Reverse order of attach: the cgroup move is undone last.
            for captured in thread.facets.reversed() {
                let facet = captured.facet
                guard let actuator = restoringActuator(for: captured) else {
                    count(facet) { $0.failed += 1 }
                    failures.append(.init(facet: facet, actuator: captured.actuator, errno: .notSupported))
                    continue
                }
                do {
                    try actuator.restore(thread.target, from: thread.snapshot)
                    count(facet) { $0.restored += 1 }
                } catch .noSuchProcess {
                    count(facet) { $0.threadGone += 1 }
                } catch {
                    count(facet) { $0.failed += 1 }
                    failures.append(.init(facet: facet, actuator: actuator.name, errno: error))
                }
            }
        }
        guard failures.isEmpty else { throw ThreadControlError(operation: .restore, tid: thread.target.tid, failures: failures) }
        journal?.remove(thread)
    }

    /// The actuator that undoes what `captured.actuator` did: ours when the
    /// names match, else (journal recovery after a restart with another
    /// configuration) a fresh one of that kind, for the kinds that need no
    /// configuration. A cgroup record needs a configured cgroup actuator.
    func restoringActuator(for captured: CapturedFacet) -> (any ThreadActuator)? {
        let own = actuator(for: captured.facet)
        if let own, own.name == captured.actuator { return own }
        let parts = captured.actuator.split(separator: PairedActuator.separator).map(String.init)
        guard parts.count > 1 else {
            return Self.restoringActuator(named: captured.actuator, own: own, recovery: recoveryActuators)
        }
        // A paired record (`uclamp+bpf-map`): every part must be restorable.
        var resolved: [any ThreadActuator] = []
        for part in parts {
            guard let actuator = Self.restoringActuator(named: part, own: own, recovery: recoveryActuators) else {
                return nil
            }
            resolved.append(actuator)
        }
        return resolved.dropFirst().reduce(resolved[0]) { PairedActuator($0, $1) }
    }

    /// One actuator by name: ours (or a part of ours), else a recovery
    /// actuator, when the names match; else a fresh one of the kinds that
    /// need no configuration.
    private static func restoringActuator(
        named name: String, own: (any ThreadActuator)?, recovery: [any ThreadActuator]
    ) -> (any ThreadActuator)? {
        var candidates: [any ThreadActuator] = recovery.reversed() + (own.map { [$0] } ?? [])
        while let next = candidates.popLast() {
            if next.name == name { return next }
            if let pair = next as? PairedActuator { candidates += [pair.first, pair.second] }
        }
        switch name {
        case "latency": return LatencyActuator()
        case "affinity": return AffinityActuator()
        case "uclamp": return UclampActuator()
        default: return nil
        }
    }
}
