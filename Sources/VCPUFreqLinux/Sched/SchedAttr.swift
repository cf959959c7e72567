/// `struct sched_attr` of sched_setattr(2)/sched_getattr(2), including the
/// util-clamp fields (SCHED_ATTR_SIZE_VER1, 56 bytes). The kernel reads
/// `size` bytes, so a 48-byte (VER0) struct leaves the clamps alone.
///
/// Layout (little-endian, no padding): size u32 @0, policy u32 @4,
/// flags u64 @8, nice s32 @16, priority u32 @20, runtime u64 @24,
/// deadline u64 @32, period u64 @40, util_min u32 @48, util_max u32 @52.
public struct SchedAttr: Equatable, Sendable, Codable {
    /// `SCHED_ATTR_SIZE_VER1`: with util_min/util_max.
    public static let sizeWithUtilClamp = 56
    /// `SCHED_ATTR_SIZE_VER0`: before util clamps (Linux < 5.3).
    public static let sizeWithoutUtilClamp = 48

    /// Bytes of the struct the kernel reads or wrote.
    public var size: UInt32
    public var policy: SchedPolicy
    public var flags: SchedFlags
    /// Nice value of fair policies, -20...19.
    public var nice: Int32
    /// Static priority of SCHED_FIFO/SCHED_RR, 1...99 (0 otherwise).
    public var priority: UInt32
    /// SCHED_DEADLINE runtime; for fair policies on Linux 6.12+ the EEVDF
    /// slice request (0 = the default slice), nanoseconds.
    public var runtimeNanoseconds: UInt64
    public var deadlineNanoseconds: UInt64
    public var periodNanoseconds: UInt64
    /// Utilization clamps, 0...1024.
    public var utilMin: UInt32
    public var utilMax: UInt32

    public init(
        size: UInt32 = UInt32(SchedAttr.sizeWithUtilClamp), policy: SchedPolicy = .normal, flags: SchedFlags = [],
        nice: Int32 = 0, priority: UInt32 = 0, runtimeNanoseconds: UInt64 = 0, deadlineNanoseconds: UInt64 = 0,
        periodNanoseconds: UInt64 = 0, utilMin: UInt32 = 0, utilMax: UInt32 = 0
    ) {
        self.size = size
        self.policy = policy
        self.flags = flags
        self.nice = nice
        self.priority = priority
        self.runtimeNanoseconds = runtimeNanoseconds
        self.deadlineNanoseconds = deadlineNanoseconds
        self.periodNanoseconds = periodNanoseconds
        self.utilMin = utilMin
        self.utilMax = utilMax
    }

    /// The 56 bytes the kernel reads, little-endian.
    public func encoded() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.sizeWithUtilClamp) { buffer, count in
            encode(into: UnsafeMutableRawBufferPointer(buffer))
            count = Self.sizeWithUtilClamp
        }
    }

    /// Writes the 56 bytes into `buffer` (at least 56 bytes) without
    /// allocating: the hot path encodes into stack memory.
    public func encode(into buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count >= Self.sizeWithUtilClamp, "sched_attr needs 56 bytes")
        buffer.storeBytes(of: size.littleEndian, toByteOffset: 0, as: UInt32.self)
        buffer.storeBytes(of: policy.rawValue.littleEndian, toByteOffset: 4, as: UInt32.self)
        buffer.storeBytes(of: flags.rawValue.littleEndian, toByteOffset: 8, as: UInt64.self)
        buffer.storeBytes(of: nice.littleEndian, toByteOffset: 16, as: Int32.self)
        buffer.storeBytes(of: priority.littleEndian, toByteOffset: 20, as: UInt32.self)
        buffer.storeBytes(of: runtimeNanoseconds.littleEndian, toByteOffset: 24, as: UInt64.self)
        buffer.storeBytes(of: deadlineNanoseconds.littleEndian, toByteOffset: 32, as: UInt64.self)
        buffer.storeBytes(of: periodNanoseconds.littleEndian, toByteOffset: 40, as: UInt64.self)
        buffer.storeBytes(of: utilMin.littleEndian, toByteOffset: 48, as: UInt32.self)
        buffer.storeBytes(of: utilMax.littleEndian, toByteOffset: 52, as: UInt32.self)
    }

    /// Decodes what sched_getattr wrote. Fields past the end of `bytes` (a
    /// 48-byte VER0 struct has no clamps) read as 0.
    public init(decoding bytes: some Collection<UInt8>) {
        let array = Array(bytes)
        func field<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            let width = MemoryLayout<T>.size
            guard offset + width <= array.count else { return 0 }
            var value: T = 0
            for index in 0..<width {
                value |= T(truncatingIfNeeded: array[offset + index]) << (8 * index)
            }
            return value
        }
        self.init(
            size: field(0, UInt32.self), policy: SchedPolicy(rawValue: field(4, UInt32.self)),
            flags: SchedFlags(rawValue: field(8, UInt64.self)), nice: field(16, Int32.self),
            priority: field(20, UInt32.self), runtimeNanoseconds: field(24, UInt64.self),
            deadlineNanoseconds: field(32, UInt64.self), periodNanoseconds: field(40, UInt64.self),
            utilMin: field(48, UInt32.self), utilMax: field(52, UInt32.self))
    }

    /// The kernel wrote the clamp fields (it reports the size it filled).
    public var hasUtilClamp: Bool { size >= UInt32(Self.sizeWithUtilClamp) }
}
