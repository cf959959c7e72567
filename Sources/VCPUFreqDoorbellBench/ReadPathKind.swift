/// The ways a guest reads `cur_perf` (the upstream driver does on every
/// scheduler tick, for frequency invariance).
public enum ReadPathKind: Int, CaseIterable, Codable, Sendable {
    /// An MMIO exit the VMM answers itself from a cached value (path 1's device).
    case inVMM = 1
    /// An MMIO exit forwarded to the daemon: a READ round trip on the socket.
    case forwarded = 2
    /// A load from the read-only register mirror (KVM_MEM_READONLY memslot).
    case mirror = 3

    public var title: String {
        switch self {
        case .inVMM: return "cur_perf: MMIO exit, answered in the VMM"
        case .forwarded: return "cur_perf: MMIO exit, READ round trip to the daemon"
        case .mirror: return "cur_perf: load from the read-only mirror"
        }
    }

    public var name: String {
        switch self {
        case .inVMM: return "read-mmio-in-vmm"
        case .forwarded: return "read-mmio-forwarded"
        case .mirror: return "read-mirror"
        }
    }
}
