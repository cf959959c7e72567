/// The host's side of the shared page (docs/abi.md, "ABI 3"): reads guest
/// slots with the seqlock protocol, validates them into `GuestRequest`s,
/// publishes the host area under its own seqlock and runs the kick
/// suppression handshake.
///
/// The host never trusts its own area in memory: the guest can write
/// anywhere in the page, so the host sequence and flags it publishes are kept
/// here, in arrays allocated once in `init` (`initialize` reads the old host
/// sequence once, only to continue from it; any value is safe there). Nothing on the `consume`/`publish` path
/// allocates. One host thread drives one `SharedPageHost`.
public struct SharedPageHost<Memory: SharedPageMemory> {
    public let memory: Memory
    public let vcpuCount: Int
    /// Highest performance each vCPU may request (its highest table entry).
    let maxPerformanceKHz: [UInt32]
    /// Features offered in the header; fields of features not offered are ignored.
    public private(set) var features: SharedPageABI.Feature = []
    /// Guest sequence last consumed per slot (0 = nothing yet: a guest's
    /// first publication has sequence 2).
    var lastConsumed: [UInt32]
    /// Host sequence and host flags last published per slot.
    var hostSequence: [UInt32]
    var hostFlags: [SharedPageABI.HostSlotFlags]
    public private(set) var counters = SharedPageCounters()

    /// Attempts `consume` makes on a slot the guest is writing before it
    /// answers `.busy`. The guest's critical section is four stores, so a
    /// few attempts cover a guest that was merely preempted mid-way, and the
    /// bound keeps a guest that stays odd from stalling the host thread.
    public static var consumeAttempts: Int { 4 }

    /// A host for a region of `maxPerformanceKHz.count` slots; the memory must
    /// span `SharedPageABI.regionSize(vcpuCount:)` bytes.
    public init(memory: Memory, maxPerformanceKHz: [UInt32]) {
        let count = min(maxPerformanceKHz.count, SharedPageABI.maximumVCPUs)
        self.memory = memory
        self.vcpuCount = count
        self.maxPerformanceKHz = Array(maxPerformanceKHz.prefix(count))
        self.lastConsumed = Array(repeating: 0, count: count)
        self.hostSequence = Array(repeating: 0, count: count)
        self.hostFlags = Array(repeating: [.kick], count: count)
    }

    public init(memory: Memory, vm: VMModel) {
        self.init(memory: memory, maxPerformanceKHz: vm.vcpus.map(\.maxFrequencyKHz))
    }

    // MARK: Header

    /// Writes the header and every slot's host area (current performance =
    /// the vCPU's max, neutral clamp, kicks wanted). The guest area belongs
    /// to the guest and is left alone: a fresh region is zero-filled by its
    /// creator, and a guest that sees `generation` change re-publishes.
    /// `hostStatus` and then `generation` are stored last, with release, so a
    /// guest that sees the new generation sees the whole header.
    public mutating func initialize(
        features: SharedPageABI.Feature = .all, pollIntervalMicroseconds: UInt32, generation: UInt32,
        doorbellCount: Int
    ) {
        self.features = features
        typealias H = SharedPageABI.Header
        memory.store(H.magic, SharedPageABI.magic)
        memory.store(H.version, SharedPageABI.version)
        memory.store(H.features, features.rawValue)
        memory.store(H.vcpuCount, UInt32(vcpuCount))
        memory.store(H.slotOffset, UInt32(SharedPageABI.headerSize))
        memory.store(H.slotSize, UInt32(SharedPageABI.slotSize))
        memory.store(H.pollIntervalMicroseconds, pollIntervalMicroseconds)
        memory.store(H.doorbellCount, UInt32(clamping: max(0, doorbellCount)))
        for slot in 0..<vcpuCount {
            let base = SharedPageABI.slotOffset(slot)
            // Continue from the sequence in memory (made even) rather than
            // restarting at 0, so a guest mid-read cannot see the same value
            // before and after a re-initialisation.
            hostSequence[slot] = memory.load(base + SharedPageABI.Slot.hostSequence) & ~1
            hostFlags[slot] = [.kick]
            lastConsumed[slot] = 0
            memory.store(base + SharedPageABI.Slot.acknowledgedSequence, 0)
            publish(slot: slot, currentPerformanceKHz: maxPerformanceKHz[slot], hint: .neutral, flags: [])
        }
        memory.storeRelease(H.hostStatus, SharedPageABI.HostStatus.active.rawValue)
        memory.storeRelease(H.generation, generation)
    }

    /// Sets the header's status bits (e.g. `.degraded` when no actuator works).
    public func setStatus(_ status: SharedPageABI.HostStatus) {
        memory.storeRelease(SharedPageABI.Header.hostStatus, status.rawValue)
    }

    // MARK: Guest area

    /// Reads `slot` with the seqlock protocol and validates what the guest
    /// published. See `SlotRead` for the answers.
    public mutating func consume(slot: Int) -> SlotRead {
        guard slot >= 0, slot < vcpuCount else { return .noSuchSlot }
        typealias S = SharedPageABI.Slot
        let base = SharedPageABI.slotOffset(slot)
        for _ in 0..<Self.consumeAttempts {
            let sequence = memory.loadAcquire(base + S.sequence)
            if sequence & 1 != 0 { continue }
            if sequence == lastConsumed[slot] {
                counters.unchanged &+= 1
                return .unchanged
            }
            // Acquire loads: none of them can be satisfied after the
            // re-check below, and one that sees a store of a newer update
            // guarantees the re-check sees that update's odd sequence.
            let flags = memory.loadAcquire(base + S.flags)
            let utilization = memory.loadAcquire(base + S.utilization)
            let performance = memory.loadAcquire(base + S.performanceKHz)
            guard memory.load(base + S.sequence) == sequence else { continue }
            lastConsumed[slot] = sequence
            memory.storeRelease(base + S.acknowledgedSequence, sequence)
            let (request, faults) = validate(
                slot: slot, flags: flags, utilization: utilization, performanceKHz: performance)
            counters.consumed &+= 1
            counters.count(faults)
            setHostFlag(.rejected, faults.rawValue != 0, slot: slot)
            return .request(request, sequence: sequence, faults: faults)
        }
        counters.busy &+= 1
        return .busy
    }

    /// Turns one consistent snapshot of a slot into a request. Each field
    /// is independent: a bad one is corrected or dropped, the others kept.
    func validate(slot: Int, flags rawFlags: UInt32, utilization: UInt32, performanceKHz: UInt32)
        -> (GuestRequest, InvalidAccessSet)
    {
        typealias F = SharedPageABI.GuestFlags
        var faults = InvalidAccessSet()
        let flags = F(rawValue: rawFlags)
        if !flags.isSubset(of: .known) { faults.insert(.unknownFlags) }
        var request = GuestRequest(vcpu: slot, source: .sharedPage)
        if flags.contains(.utilValid), features.contains(.utilization) {
            if utilization > UtilHintABI.maximumUtilization { faults.insert(.utilizationAboveMax) }
            request.utilization = min(utilization, UtilHintABI.maximumUtilization)
        }
        if flags.contains(.perfValid), features.contains(.performance) {
            let max = maxPerformanceKHz[slot]
            if performanceKHz == 0 {
                faults.insert(.performanceZero)
            } else {
                if performanceKHz > max { faults.insert(.performanceAboveMax) }
                request.performanceKHz = min(performanceKHz, max)
            }
        }
        if features.contains(.latencyHint) { request.latencySensitive = flags.contains(.latencySensitive) }
        request.boost = features.contains(.boost) && flags.contains(.boost)
        return (request, faults)
    }

    // MARK: Host area

    /// Publishes what the host applied for `slot` under the host seqlock
    /// (sequence odd while writing). `flags` may carry `.capped` and
    /// `.actuationFailed`; `.kick` and `.rejected` are owned by the kick
    /// handshake and `consume` and keep their current state.
    public mutating func publish(
        slot: Int, currentPerformanceKHz: UInt32, hint: HostHint, flags: SharedPageABI.HostSlotFlags
    ) {
        guard slot >= 0, slot < vcpuCount else { return }
        typealias S = SharedPageABI.Slot
        let base = SharedPageABI.slotOffset(slot)
        let owned: SharedPageABI.HostSlotFlags = [.kick, .rejected]
        hostFlags[slot] = flags.subtracting(owned).union(hostFlags[slot].intersection(owned))
        let sliceMicroseconds: UInt32
        if case .slice(let microseconds) = hint.latency { sliceMicroseconds = microseconds } else { sliceMicroseconds = 0 }
        let odd = hostSequence[slot] &+ 1
        memory.store(base + S.hostSequence, odd)
        // Release stores keep the odd sequence ahead of every field (the
        // writer half of the seqlock; see the guest's publish).
        memory.storeRelease(base + S.currentPerformanceKHz, currentPerformanceKHz)
        memory.storeRelease(base + S.appliedClamp, UInt32(hint.utilMin) | UInt32(hint.utilMax) << 16)
        memory.storeRelease(base + S.hostFlags, hostFlags[slot].rawValue)
        memory.storeRelease(base + S.appliedSliceMicroseconds, sliceMicroseconds)
        hostSequence[slot] = odd &+ 1
        memory.storeRelease(base + S.hostSequence, hostSequence[slot])
    }

    /// Whether the host currently wants a doorbell after updates of `slot`.
    public func kicksRequested(slot: Int) -> Bool {
        slot >= 0 && slot < vcpuCount && hostFlags[slot].contains(.kick)
    }

    private mutating func setHostFlag(_ flag: SharedPageABI.HostSlotFlags, _ on: Bool, slot: Int) {
        guard hostFlags[slot].contains(flag) != on else { return }
        if on { hostFlags[slot].insert(flag) } else { hostFlags[slot].remove(flag) }
        memory.storeRelease(SharedPageABI.slotOffset(slot) + SharedPageABI.Slot.hostFlags, hostFlags[slot].rawValue)
    }

    // MARK: Kick suppression

    /// Clears the kick flag of `slots`: the host is about to poll them at
    /// least every `pollIntervalMicroseconds`. A guest that still saw the
    /// flag set rings once more, which is harmless.
    public mutating func suppressKicks(slots: some Collection<Int>) {
        for slot in slots where slot >= 0 && slot < vcpuCount {
            setHostFlag(.kick, false, slot: slot)
        }
    }

    /// Sets the kick flag of `slots` (the host stops polling them) and returns
    /// the slots updated since they were last consumed; the caller consumes
    /// them now. Dekker handshake with the guest's publish: the host stores
    /// the flag, fences, loads the sequence; the guest stores the sequence,
    /// fences, loads the flag. With both fences at least one side sees the
    /// other's store, so an update racing with this call either rings the
    /// doorbell or is in the returned list, never neither. (A slot still odd
    /// here is listed too; its guest is bound to see the flag and ring.)
    /// Not a per-request path: it allocates the returned array.
    public mutating func requestKicks(slots: some Collection<Int>) -> [Int] {
        for slot in slots where slot >= 0 && slot < vcpuCount {
            setHostFlag(.kick, true, slot: slot)
        }
        memory.fullFence()
        var changed: [Int] = []
        for slot in slots where slot >= 0 && slot < vcpuCount {
            let sequence = memory.loadAcquire(SharedPageABI.slotOffset(slot) + SharedPageABI.Slot.sequence)
            if sequence != lastConsumed[slot] { changed.append(slot) }
        }
        counters.caughtByRecheck &+= UInt64(changed.count)
        return changed
    }
}

extension SharedPageHost: Sendable where Memory: Sendable {}
