/// `sched_flags` of `struct sched_attr` (a u64 in the struct).
public struct SchedFlags: OptionSet, Hashable, Sendable, Codable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// Children forked by the thread start with the default policy and clamps.
    /// The corresponding C constant is `SCHED_FLAG_RESET_ON_FORK`.
    public static var resetOnFork: SchedFlags { SchedFlags(rawValue: 0x01) }
    /// The corresponding C constant is `SCHED_FLAG_RECLAIM`.
    public static var reclaim: SchedFlags { SchedFlags(rawValue: 0x02) }
    /// The corresponding C constant is `SCHED_FLAG_DL_OVERRUN`.
    public static var deadlineOverrun: SchedFlags { SchedFlags(rawValue: 0x04) }
    /// Leave the policy alone (the struct's `sched_policy` is ignored).
    /// The corresponding C constant is `SCHED_FLAG_KEEP_POLICY`.
    public static var keepPolicy: SchedFlags { SchedFlags(rawValue: 0x08) }
    /// Leave nice/priority/runtime/deadline/period alone.
    /// The corresponding C constant is `SCHED_FLAG_KEEP_PARAMS`.
    public static var keepParams: SchedFlags { SchedFlags(rawValue: 0x10) }
    /// Set `sched_util_min`. The corresponding C constant is `SCHED_FLAG_UTIL_CLAMP_MIN`.
    public static var utilClampMin: SchedFlags { SchedFlags(rawValue: 0x20) }
    /// Set `sched_util_max`. The corresponding C constant is `SCHED_FLAG_UTIL_CLAMP_MAX`.
    public static var utilClampMax: SchedFlags { SchedFlags(rawValue: 0x40) }

    /// Both clamps. The corresponding C constant is `SCHED_FLAG_UTIL_CLAMP`.
    public static var utilClamp: SchedFlags { [.utilClampMin, .utilClampMax] }
}
