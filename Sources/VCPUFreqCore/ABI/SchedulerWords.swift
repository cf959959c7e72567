/// The two host words of a slot that the host's BPF programs write on a
/// BPF-map page (docs/abi.md, "Host words written by BPF"). Each is stored
/// whole by one program run and read on its own: no seqlock, so programs on
/// several CPUs may write them at once. 0 means "not written yet" (and is
/// all a memfd page ever holds).
extension SharedPageABI {
    /// `Slot.schedulerSeen`: what the programs last read from the guest
    /// half, in one consistent read, after bounds and the VM's caps.
    public struct SchedulerSeen: Equatable, Sendable {
        /// Low 16 bits of the guest `sequence` of that read.
        public var sequence: UInt16
        /// The utilization the programs act on (≤ the VM's cap); nil when the
        /// publication had none (or the VM does not honour utilization).
        public var utilization: UInt16?
        /// Latency-sensitive, honoured.
        public var latencySensitive: Bool
        /// Boost requested and granted.
        public var boostGranted: Bool
        /// A value was above the VM's cap and was cut to it.
        public var capped: Bool
        /// The publication had a fault (unknown flags, utilization > 1024, perf 0 or above the max).
        public var rejected: Bool

        public static let sequenceMask: UInt32 = 0x0000_FFFF
        public static let utilizationShift: UInt32 = 16
        public static let utilizationMask: UInt32 = 0x07FF_0000
        public static let latencyBit: UInt32 = 1 << 27
        public static let boostBit: UInt32 = 1 << 28
        public static let cappedBit: UInt32 = 1 << 29
        public static let rejectedBit: UInt32 = 1 << 30
        public static let utilizationValidBit: UInt32 = 1 << 31

        public init(
            sequence: UInt16, utilization: UInt16?, latencySensitive: Bool = false, boostGranted: Bool = false,
            capped: Bool = false, rejected: Bool = false
        ) {
            self.sequence = sequence
            self.utilization = utilization
            self.latencySensitive = latencySensitive
            self.boostGranted = boostGranted
            self.capped = capped
            self.rejected = rejected
        }

        /// Decodes a word; nil for 0 (never written: a consistent read of a
        /// published slot has a sequence of at least 2).
        public init?(word: UInt32) {
            guard word != 0 else { return nil }
            sequence = UInt16(truncatingIfNeeded: word & Self.sequenceMask)
            utilization = word & Self.utilizationValidBit != 0
                ? UInt16(truncatingIfNeeded: (word & Self.utilizationMask) >> Self.utilizationShift) : nil
            latencySensitive = word & Self.latencyBit != 0
            boostGranted = word & Self.boostBit != 0
            capped = word & Self.cappedBit != 0
            rejected = word & Self.rejectedBit != 0
        }

        /// The word the programs store (utilizations above 2047 cannot occur: they are ≤ 1024).
        public var word: UInt32 {
            var word = UInt32(sequence)
            if let utilization {
                word |= Self.utilizationValidBit | (UInt32(utilization) << Self.utilizationShift) & Self.utilizationMask
            }
            if latencySensitive { word |= Self.latencyBit }
            if boostGranted { word |= Self.boostBit }
            if capped { word |= Self.cappedBit }
            if rejected { word |= Self.rejectedBit }
            return word
        }
    }

    /// `Slot.schedulerPlacement`: where the host runs this vCPU, written at
    /// its switches (in and out) and migrations.
    public struct SchedulerPlacement: Equatable, Sendable {
        /// The host CPU (4094 and above saturate to 4094).
        public var cpu: Int
        /// Capacity 0...1024 of that CPU in the host topology (0 when it is not in it).
        public var capacity: Int
        /// Index of its host cluster; nil when the topology does not list the CPU
        /// (or the index is 15 or more).
        public var cluster: Int?
        /// The wait before the vCPU's last completed run, as the run-delay
        /// histogram's log2(µs) bucket: 0 = under 2 µs, k = [2^k, 2^(k+1)) µs.
        public var runDelayBucket: Int

        public static let cpuMask: UInt32 = 0x0000_0FFF
        public static let capacityShift: UInt32 = 12
        public static let capacityMask: UInt32 = 0x007F_F000
        public static let clusterShift: UInt32 = 23
        public static let clusterMask: UInt32 = 0x0780_0000
        public static let delayShift: UInt32 = 27
        public static let delayMask: UInt32 = 0xF800_0000
        /// The cluster field's "not in the topology".
        public static let unknownCluster = 15

        public init(cpu: Int, capacity: Int, cluster: Int?, runDelayBucket: Int) {
            self.cpu = cpu
            self.capacity = capacity
            self.cluster = cluster
            self.runDelayBucket = runDelayBucket
        }

        /// Decodes a word; nil while no CPU is known (never written).
        public init?(word: UInt32) {
            let cpuPlusOne = Int(word & Self.cpuMask)
            guard cpuPlusOne > 0 else { return nil }
            cpu = cpuPlusOne - 1
            capacity = Int((word & Self.capacityMask) >> Self.capacityShift)
            let cluster = Int((word & Self.clusterMask) >> Self.clusterShift)
            self.cluster = cluster == Self.unknownCluster ? nil : cluster
            runDelayBucket = Int((word & Self.delayMask) >> Self.delayShift)
        }

        /// The word the programs store: every field saturates at its width.
        public var word: UInt32 {
            let cpuField = UInt32(min(max(cpu, 0) + 1, Int(Self.cpuMask)))
            let capacityField = UInt32(min(max(capacity, 0), 1024)) << Self.capacityShift
            let clusterValue = cluster.map { min(max($0, 0), Self.unknownCluster) } ?? Self.unknownCluster
            let clusterField = UInt32(clusterValue) << Self.clusterShift
            let delayField = UInt32(min(max(runDelayBucket, 0), 31)) << Self.delayShift
            return cpuField | capacityField | clusterField | delayField
        }

        /// The bucket's lower bound, µs (0 for bucket 0).
        public var runDelayAtLeastMicroseconds: UInt64 { runDelayBucket == 0 ? 0 : UInt64(1) << UInt64(runDelayBucket) }
    }
}
