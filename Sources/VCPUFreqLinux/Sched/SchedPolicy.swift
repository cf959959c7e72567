/// A scheduling policy of `struct sched_attr`. An open set: the kernel adds
/// policies (SCHED_EXT is 7), and a value read back from a thread must
/// round-trip even when this module has no name for it.
public struct SchedPolicy: RawRepresentable, Hashable, Sendable, Codable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The corresponding C constant is `SCHED_NORMAL` (`SCHED_OTHER`): CFS/EEVDF.
    public static var normal: SchedPolicy { SchedPolicy(rawValue: 0) }
    /// The corresponding C constant is `SCHED_FIFO`.
    public static var fifo: SchedPolicy { SchedPolicy(rawValue: 1) }
    /// The corresponding C constant is `SCHED_RR`.
    public static var roundRobin: SchedPolicy { SchedPolicy(rawValue: 2) }
    /// The corresponding C constant is `SCHED_BATCH`.
    public static var batch: SchedPolicy { SchedPolicy(rawValue: 3) }
    /// The corresponding C constant is `SCHED_IDLE`.
    public static var idle: SchedPolicy { SchedPolicy(rawValue: 5) }
    /// The corresponding C constant is `SCHED_DEADLINE`.
    public static var deadline: SchedPolicy { SchedPolicy(rawValue: 6) }

    /// Policies run by the fair class, whose `sched_runtime` is the EEVDF
    /// slice (Linux 6.12+) and whose nice value matters.
    public var isFair: Bool { self == .normal || self == .batch || self == .idle }

    public var description: String {
        switch rawValue {
        case 0: return "normal"
        case 1: return "fifo"
        case 2: return "rr"
        case 3: return "batch"
        case 5: return "idle"
        case 6: return "deadline"
        default: return "policy(\(rawValue))"
        }
    }
}
