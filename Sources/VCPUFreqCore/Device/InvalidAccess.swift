/// Why the device model refused (or corrected) a guest access. Every kind has
/// a defined, safe answer — the table in docs/abi.md, "Invalid accesses" —
/// and a counter in `DeviceCounters`; none of them ever traps.
///
/// The raw values index `DeviceCounters` and `InvalidAccessSet` bits: append
/// new kinds at the end.
public enum InvalidAccess: Int, CaseIterable, Equatable, Sendable, CustomStringConvertible {
    /// The access width is not 1, 2, 4 or 8 bytes, or a 32-bit register was
    /// accessed with a width other than 4. Read 0, write dropped.
    case badWidth = 0
    /// A register access at an offset that is not a multiple of 4, a doorbell
    /// write that does not start at the doorbell's first byte, or a shared page
    /// access that is not naturally aligned. Read 0, write dropped.
    case unaligned = 1
    /// Nothing lives at this offset (a gap after a window's last register,
    /// past the shared page region, outside the device space). Read 0, write dropped.
    case unmapped = 2
    /// The VMM reported an executing vCPU the VM does not have. Read 0, write dropped.
    case vcpuOutOfRange = 3
    /// The offset is in a window (or doorbell) reserved for a vCPU index at or
    /// past the VM's vCPU count. Read 0, write dropped.
    case beyondLastVCPU = 4
    /// `perftbl_rd` / `freqtbl_rd` read while the selected index is at or past
    /// the table length. The selection is remembered as written; the read returns 0.
    case tableIndexOutOfRange = 5
    /// A performance request of 0 kHz (`set_perf` 0, or a shared page slot with
    /// `perfValid` and 0). The driver never asks for 0 (its minimum is 1): ignored.
    case performanceZero = 6
    /// A performance request above the vCPU's highest table entry. Clamped to
    /// that entry; the request still goes to the policy.
    case performanceAboveMax = 7
    /// A utilization above 1024. Clamped to 1024; the request still goes to the policy.
    case utilizationAboveMax = 8
    /// A write to a read-only register. Dropped.
    case writeToReadOnly = 9
    /// A read of a write-only register (or of a doorbell). Returns 0.
    case readOfWriteOnly = 10
    /// A shared page slot with flag bits this ABI version does not define.
    /// The unknown bits are ignored, the known ones honoured.
    case unknownFlags = 11

    /// Snake-case name used in counters output and docs.
    public var description: String {
        switch self {
        case .badWidth: return "bad_width"
        case .unaligned: return "unaligned"
        case .unmapped: return "unmapped"
        case .vcpuOutOfRange: return "vcpu_out_of_range"
        case .beyondLastVCPU: return "beyond_last_vcpu"
        case .tableIndexOutOfRange: return "table_index_out_of_range"
        case .performanceZero: return "performance_zero"
        case .performanceAboveMax: return "performance_above_max"
        case .utilizationAboveMax: return "utilization_above_max"
        case .writeToReadOnly: return "write_to_read_only"
        case .readOfWriteOnly: return "read_of_write_only"
        case .unknownFlags: return "unknown_flags"
        }
    }
}

/// A set of `InvalidAccess` kinds without allocation (one bit per kind), for
/// a shared page slot that can be malformed in several ways at once.
public struct InvalidAccessSet: OptionSet, Equatable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(_ kind: InvalidAccess) { self.rawValue = 1 << UInt32(kind.rawValue) }

    public func contains(_ kind: InvalidAccess) -> Bool { contains(InvalidAccessSet(kind)) }
    public mutating func insert(_ kind: InvalidAccess) { formUnion(InvalidAccessSet(kind)) }
}
