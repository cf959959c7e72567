/// The guest's side of the shared page: the normative publish algorithm in
/// Swift (the C header holds the same for guest authors). Used by tests, the
/// trace replay and the load generator. Stateless: everything is in memory.
public struct SharedPageGuest<Memory: SharedPageMemory> {
    public let memory: Memory
    public let vcpuCount: Int

    public init(memory: Memory, vcpuCount: Int) {
        self.memory = memory
        self.vcpuCount = max(0, min(vcpuCount, SharedPageABI.maximumVCPUs))
    }

    /// Publishes a request in `slot` and says whether the doorbell must be
    /// rung. Values go in raw (no validation: tests use it to send bad ones).
    ///
    /// 1. sequence + 1 (odd: "writing"), relaxed;
    /// 2. the fields, with release stores (no field is visible before the odd
    ///    sequence — the C header uses a release fence and relaxed stores);
    /// 3. sequence + 2 (even), store-release (fields visible before it);
    /// 4. full fence (StoreLoad: the sequence is visible before the flag load);
    /// 5. load the host's kick flag: set = ring the doorbell.
    public func publish(
        slot: Int, utilization: UInt32, performanceKHz: UInt32, flags: SharedPageABI.GuestFlags
    ) -> Bool {
        guard slot >= 0, slot < vcpuCount else { return false }
        typealias S = SharedPageABI.Slot
        let base = SharedPageABI.slotOffset(slot)
        // A guest that died mid-update left the sequence odd: start from the
        // even value below it so the new one is odd, then even again.
        let even = memory.load(base + S.sequence) & ~1
        // 0 means "never published" to a host that starts fresh: skipped on wrap-around.
        let next = even &+ 2 == 0 ? 2 : even &+ 2
        memory.store(base + S.sequence, even &+ 1)
        memory.storeRelease(base + S.flags, flags.rawValue)
        memory.storeRelease(base + S.utilization, utilization)
        memory.storeRelease(base + S.performanceKHz, performanceKHz)
        memory.storeRelease(base + S.sequence, next)
        memory.fullFence()
        let hostFlags = SharedPageABI.HostSlotFlags(rawValue: memory.load(base + S.hostFlags))
        return hostFlags.contains(.kick)
    }

    /// The host area of a slot, read consistently.
    public struct HostArea: Equatable, Sendable {
        public var sequence: UInt32
        public var currentPerformanceKHz: UInt32
        public var utilMin: UInt16
        public var utilMax: UInt16
        public var flags: SharedPageABI.HostSlotFlags
        public var appliedSliceMicroseconds: UInt32
    }

    /// Reads the host area of `slot` under the host seqlock; nil when the host
    /// was writing on every one of `attempts` tries (or no such slot).
    public func readHostArea(slot: Int, attempts: Int = 4) -> HostArea? {
        guard slot >= 0, slot < vcpuCount else { return nil }
        typealias S = SharedPageABI.Slot
        let base = SharedPageABI.slotOffset(slot)
        for _ in 0..<max(1, attempts) {
            let sequence = memory.loadAcquire(base + S.hostSequence)
            if sequence & 1 != 0 { continue }
            let performance = memory.loadAcquire(base + S.currentPerformanceKHz)
            let clamp = memory.loadAcquire(base + S.appliedClamp)
            let flags = memory.loadAcquire(base + S.hostFlags)
            let slice = memory.loadAcquire(base + S.appliedSliceMicroseconds)
            guard memory.load(base + S.hostSequence) == sequence else { continue }
            return HostArea(
                sequence: sequence, currentPerformanceKHz: performance,
                utilMin: UInt16(truncatingIfNeeded: clamp), utilMax: UInt16(truncatingIfNeeded: clamp >> 16),
                flags: SharedPageABI.HostSlotFlags(rawValue: flags), appliedSliceMicroseconds: slice)
        }
        return nil
    }

    /// The guest sequence the host last acknowledged for `slot`.
    public func acknowledgedSequence(slot: Int) -> UInt32 {
        guard slot >= 0, slot < vcpuCount else { return 0 }
        return memory.loadAcquire(SharedPageABI.slotOffset(slot) + SharedPageABI.Slot.acknowledgedSequence)
    }
}

extension SharedPageGuest: Sendable where Memory: Sendable {}
