/// What `SharedPageHost.consume(slot:)` found in a slot.
public enum SlotRead: Equatable, Sendable {
    /// The guest has not published since the host last consumed this slot.
    case unchanged
    /// The guest was mid-update on every attempt (sequence odd, or changed
    /// while the host read). Nothing is lost: a guest that completes its
    /// update rings the doorbell if kicks are wanted, and a polling host
    /// comes back anyway. A guest stuck odd forever only costs this counter.
    case busy
    /// A new publication with this even `sequence`, validated into a request.
    /// `faults` lists what was malformed and corrected (clamped or ignored,
    /// see docs/abi.md); non-empty faults also set `HostSlotFlags.rejected`.
    case request(GuestRequest, sequence: UInt32, faults: InvalidAccessSet)
    /// The slot index is not one of the VM's vCPUs.
    case noSuchSlot
}

/// Counters of one VM's shared page, allocated once; wrapping arithmetic.
public struct SharedPageCounters: Equatable, Sendable {
    /// Publications consumed (valid or corrected).
    public internal(set) var consumed: UInt64 = 0
    /// `consume` calls that found nothing new.
    public internal(set) var unchanged: UInt64 = 0
    /// `consume` calls that gave up on a slot being written.
    public internal(set) var busy: UInt64 = 0
    /// Slots `requestKicks` found updated while kicks were suppressed.
    public internal(set) var caughtByRecheck: UInt64 = 0
    private var invalidByKind = Array(repeating: UInt64(0), count: InvalidAccess.allCases.count)

    public init() {}

    /// Publications that had this fault.
    public subscript(kind: InvalidAccess) -> UInt64 { invalidByKind[kind.rawValue] }

    mutating func count(_ faults: InvalidAccessSet) {
        guard faults.rawValue != 0 else { return }
        for kind in InvalidAccess.allCases where faults.contains(kind) { invalidByKind[kind.rawValue] &+= 1 }
    }
}
