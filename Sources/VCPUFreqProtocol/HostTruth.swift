extension StatusDocument {
    /// What the host scheduler really did with one vCPU thread since the
    /// daemon started tracking it, as the BPF programs counted it
    /// (docs/bpf.md): cumulative counters, so a reader takes two samples and
    /// divides the differences by the difference of `sampledAtNanoseconds`
    /// (`vcpufreq stats` does).
    public struct HostTruth: Codable, Equatable, Sendable {
        /// CLOCK_MONOTONIC when the daemon read the counters, ns.
        public var sampledAtNanoseconds: UInt64
        /// Time on CPU since tracked, ns (the slice it is in included).
        public var runtimeNanoseconds: UInt64
        /// Whether it was on a CPU when sampled.
        public var onCPU: Bool
        public var wakeups: UInt64
        /// Switched out blocked (the kernel's nvcsw).
        public var voluntarySwitches: UInt64
        /// Switched out still runnable: preempted (the kernel's nivcsw).
        public var involuntarySwitches: UInt64
        /// Moves to another CPU.
        public var migrations: UInt64
        /// The CPU it last ran on; nil before it was seen running.
        public var lastCPU: Int?
        /// Sum of its runnable → running delays, ns.
        public var runDelaySumNanoseconds: UInt64
        /// Number of delays measured (one per run).
        public var runDelayCount: UInt64
        /// The delays by log2(µs): bucket 0 = 0–1 µs, bucket i = [2^i, 2^(i+1)) µs,
        /// bucket 31 = from 2^31 µs on. Trailing empty buckets are left out.
        public var runDelayBuckets: [UInt64]
        public var exits: Exits
        /// What the guest asked at the thread's scheduling events, read in
        /// place by the programs (a vCPU with a BPF-map shared page); nil for
        /// other threads.
        public var guest: GuestSamples? = nil

        /// `on_cpu` and `last_cpu` in JSON, decodable with convertFromSnakeCase.
        enum CodingKeys: String, CodingKey {
            case sampledAtNanoseconds, runtimeNanoseconds, wakeups, voluntarySwitches, involuntarySwitches
            case migrations, runDelaySumNanoseconds, runDelayCount, runDelayBuckets, exits, guest
            case onCPU = "onCpu"
            case lastCPU = "lastCpu"
        }

        public init(
            sampledAtNanoseconds: UInt64, runtimeNanoseconds: UInt64, onCPU: Bool, wakeups: UInt64,
            voluntarySwitches: UInt64, involuntarySwitches: UInt64, migrations: UInt64, lastCPU: Int?,
            runDelaySumNanoseconds: UInt64, runDelayCount: UInt64, runDelayBuckets: [UInt64], exits: Exits
        ) {
            self.sampledAtNanoseconds = sampledAtNanoseconds
            self.runtimeNanoseconds = runtimeNanoseconds
            self.onCPU = onCPU
            self.wakeups = wakeups
            self.voluntarySwitches = voluntarySwitches
            self.involuntarySwitches = involuntarySwitches
            self.migrations = migrations
            self.lastCPU = lastCPU
            self.runDelaySumNanoseconds = runDelaySumNanoseconds
            self.runDelayCount = runDelayCount
            self.runDelayBuckets = runDelayBuckets
            self.exits = exits
        }
    }

    /// The guest's requests as the host's BPF programs read them from a
    /// BPF-map shared page, in place, at the vCPU thread's switches,
    /// wake-ups and scheduler ticks (`struct vcpufreq_guest_samples`):
    /// cumulative since tracked, values after bounds and the VM's caps.
    public struct GuestSamples: Codable, Equatable, Sendable {
        /// Consistent reads of the guest half.
        public var reads: UInt64
        /// Reads that found the guest writing (odd sequence, or it changed
        /// during the read): refused, never used.
        public var busy: UInt64
        /// Consistent reads of a sequence the previous read had not seen.
        public var newRequests: UInt64
        /// Reads with a value above the VM's cap (cut to it).
        public var capped: UInt64
        /// Reads with a fault (unknown flags, utilization > 1024, perf 0 or above the max).
        public var rejected: UInt64
        /// Reads with a utilization request, and the sum of those utilizations.
        public var utilizationReads: UInt64
        public var utilizationSum: UInt64
        /// Reads with the latency flag honoured / a boost granted.
        public var latencyReads: UInt64
        public var boostReads: UInt64
        /// CLOCK_MONOTONIC of the last consistent read, ns; 0 = none yet.
        public var lastReadNanoseconds: UInt64
        /// The guest sequence of that read, its honoured flags (`SharedPageABI.GuestFlags`),
        /// its utilization and performance after the caps (nil: none requested).
        public var lastSequence: UInt32
        public var lastFlags: UInt32
        public var lastUtilization: UInt32?
        public var lastPerformanceKHz: UInt32?

        public init(
            reads: UInt64 = 0, busy: UInt64 = 0, newRequests: UInt64 = 0, capped: UInt64 = 0, rejected: UInt64 = 0,
            utilizationReads: UInt64 = 0, utilizationSum: UInt64 = 0, latencyReads: UInt64 = 0, boostReads: UInt64 = 0,
            lastReadNanoseconds: UInt64 = 0, lastSequence: UInt32 = 0, lastFlags: UInt32 = 0,
            lastUtilization: UInt32? = nil, lastPerformanceKHz: UInt32? = nil
        ) {
            self.reads = reads
            self.busy = busy
            self.newRequests = newRequests
            self.capped = capped
            self.rejected = rejected
            self.utilizationReads = utilizationReads
            self.utilizationSum = utilizationSum
            self.latencyReads = latencyReads
            self.boostReads = boostReads
            self.lastReadNanoseconds = lastReadNanoseconds
            self.lastSequence = lastSequence
            self.lastFlags = lastFlags
            self.lastUtilization = lastUtilization
            self.lastPerformanceKHz = lastPerformanceKHz
        }

        /// Mean utilization over the reads that had one; nil without any.
        public var meanUtilization: Double? {
            utilizationReads > 0 ? Double(utilizationSum) / Double(utilizationReads) : nil
        }
    }

    /// KVM exits of one vCPU thread (the thread that runs KVM_RUN) since tracked.
    public struct Exits: Codable, Equatable, Sendable {
        /// tracepoint kvm/kvm_exit: every exit from the guest (VMX, SVM,
        /// arm64; never fires under PVM).
        public var kvmExits: UInt64
        /// Returns from KVM_RUN to the VMM by `KVM_EXIT_*` reason; only
        /// reasons that occurred, in reason order.
        public var userspace: [ReasonCount]
        /// KVM_RUN returned -EINTR (a signal).
        public var userspaceInterrupted: UInt64
        /// KVM_RUN returned another error.
        public var userspaceErrors: UInt64
        /// MMIO reads KVM completed in the kernel.
        public var mmioReads: UInt64
        /// MMIO writes (in-kernel devices, ioeventfds, and those the VMM handled).
        public var mmioWrites: UInt64
        /// MMIO reads no in-kernel device served (they went to the VMM).
        public var mmioUnsatisfiedReads: UInt64
        public var pioIn: UInt64
        public var pioOut: UInt64

        public init(
            kvmExits: UInt64 = 0, userspace: [ReasonCount] = [], userspaceInterrupted: UInt64 = 0,
            userspaceErrors: UInt64 = 0, mmioReads: UInt64 = 0, mmioWrites: UInt64 = 0,
            mmioUnsatisfiedReads: UInt64 = 0, pioIn: UInt64 = 0, pioOut: UInt64 = 0
        ) {
            self.kvmExits = kvmExits
            self.userspace = userspace
            self.userspaceInterrupted = userspaceInterrupted
            self.userspaceErrors = userspaceErrors
            self.mmioReads = mmioReads
            self.mmioWrites = mmioWrites
            self.mmioUnsatisfiedReads = mmioUnsatisfiedReads
            self.pioIn = pioIn
            self.pioOut = pioOut
        }

        /// Returns to the VMM with this `KVM_EXIT_*` code.
        public func userspace(reason: UInt32) -> UInt64 {
            userspace.first { $0.reason == reason }?.count ?? 0
        }

        /// Every return from KVM_RUN to the VMM, interruptions and errors included.
        public var totalUserspace: UInt64 {
            userspace.reduce(userspaceInterrupted &+ userspaceErrors) { $0 &+ $1.count }
        }
    }

    /// A count of one `KVM_EXIT_*` reason. An array of these rather than a
    /// dictionary: JSON key conversion would rewrite names like system_event.
    public struct ReasonCount: Codable, Equatable, Sendable {
        /// The `KVM_EXIT_*` code (KVM_EXIT_MMIO = 6); reasons the programs do not
        /// count one by one are reported together under 4294967295.
        public var reason: UInt32
        /// "mmio", "io", …; "reason N" for codes without a name here.
        public var name: String
        public var count: UInt64

        public init(reason: UInt32, name: String, count: UInt64) {
            self.reason = reason
            self.name = name
            self.count = count
        }
    }
}
