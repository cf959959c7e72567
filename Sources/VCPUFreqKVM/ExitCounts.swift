import VCPUFreqCore

/// How many times a vCPU left KVM_RUN for userspace, by kind and by KVM exit
/// code. The DONE write that ends a script run is not counted, so a script
/// that never touches MMIO or ports has `total == 0`: that is how tests and
/// benchmarks prove "zero exits".
public struct ExitCounts: Sendable, Equatable, CustomStringConvertible {
    /// Exit codes 0..<`reasonSlots - 1` are counted individually; larger
    /// codes (none exist today) share the last slot.
    public static let reasonSlots = 64

    /// KVM_EXIT_MMIO exits for guest loads.
    public var mmioReads: UInt64 = 0
    /// KVM_EXIT_MMIO exits for guest stores (including stores to read-only memslots).
    public var mmioWrites: UInt64 = 0
    /// KVM_EXIT_IO exits (port reads and writes).
    public var io: UInt64 = 0
    /// Every other exit, KVM_RUN interruptions (`KVMExitReason.interrupted`) included.
    public var other: UInt64 = 0
    /// Stores to the idle page (`GuestLayout.idleAddress`): the guest halting
    /// until a time, the way it would with `hlt` and a timer. Not in `total`
    /// (and not under `byReason`): an idle is the guest asking to sleep, not
    /// an access to a device.
    public var idle: UInt64 = 0
    /// Nanoseconds the vCPU thread slept in idle stores.
    public var idleNanoseconds: UInt64 = 0
    /// Counts by `kvm_run.exit_reason`; index = exit code.
    public var byReason: [UInt64] = Array(repeating: 0, count: ExitCounts.reasonSlots)

    public init() {}

    /// All counted exits.
    public var total: UInt64 { mmioReads &+ mmioWrites &+ io &+ other }

    public subscript(reason: KVMExitReason) -> UInt64 {
        byReason[Int(min(reason.rawValue, UInt32(Self.reasonSlots - 1)))]
    }

    /// Counts between two snapshots of the same vCPU.
    public static func - (later: ExitCounts, earlier: ExitCounts) -> ExitCounts {
        var delta = ExitCounts()
        delta.mmioReads = later.mmioReads &- earlier.mmioReads
        delta.mmioWrites = later.mmioWrites &- earlier.mmioWrites
        delta.io = later.io &- earlier.io
        delta.other = later.other &- earlier.other
        delta.idle = later.idle &- earlier.idle
        delta.idleNanoseconds = later.idleNanoseconds &- earlier.idleNanoseconds
        for index in 0..<Self.reasonSlots {
            delta.byReason[index] = later.byReason[index] &- earlier.byReason[index]
        }
        return delta
    }

    public var description: String {
        var text = "mmio reads \(mmioReads), mmio writes \(mmioWrites), io \(io), other \(other)"
        for (code, count) in byReason.enumerated() where count > 0 {
            text += ", \(KVMExitReason(rawValue: UInt32(code)).name) \(count)"
        }
        if idle > 0 { text += ", idle \(idle)" }
        return text
    }
}
