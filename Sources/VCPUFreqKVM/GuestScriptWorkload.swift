import Foundation

/// The parameter block of the interpreter's WORKLOAD op (`GuestOp.workload`):
/// a guest workload run the way a Linux guest with a DVFS driver runs it.
///
/// The guest program is a list of jobs (compute and memory-bound work, each
/// released at a time). Between jobs the vCPU idles: it stores the time left
/// to the idle page (`GuestLayout.idleAddress`) and the VMM's vCPU thread
/// sleeps, as a halted vCPU's thread does on a VMX/SVM host, so host
/// contention and latency hints act on its wake-ups. While a job runs, a
/// scheduler tick comes every `tick` (the guest looks at its TSC between
/// chunks of work: there are no interrupts at CPL3); each tick reads
/// `cur_perf` (the upstream driver's frequency invariance: a mirror load, or
/// an MMIO exit without the mirror). A PELT-like estimate of the vCPU's
/// utilization runs in the guest, and on every update schedutil's rule picks
/// a performance level and sends it through the configured path (a store to
/// `set_perf`, or a shared-page publish with the latency flag of the running
/// job), no more often than the rate limit. The exact arithmetic is in
/// Sources/CVCPUFreqKVM/guest_interpreter.S ("12 WORKLOAD"); `GuestUtilization`
/// is the same estimate in Swift.
///
/// The block, then the jobs, then the records live in guest RAM from the
/// block's address (`footprint(jobs:)` bytes). Every field is a
/// little-endian u64.
public struct WorkloadParameters: Sendable, Equatable {
    /// How the guest's driver reaches the host.
    public enum Kind: UInt64, Sendable, Codable {
        /// No device: the guest computes its estimate and sends nothing.
        case none = 0
        /// A 32-bit store of the performance level at `target` (`set_perf`).
        case store = 1
        /// The shared-page protocol on the slot at `target`: perf field,
        /// slot flags, the doorbell rung only when the host asks for kicks.
        case publish = 2
        /// The shared page read in place by the host's BPF programs (a
        /// BPF-map page): the estimate itself (0...1024) in the slot's
        /// utilization field, with the slot flags, at every update (no rate
        /// limit, no change test: a store the host reads at the vCPU's
        /// scheduling events wakes nothing); the doorbell only when asked.
        case publishUtilization = 3
    }

    /// One job of the guest program.
    public struct Job: Sendable, Equatable {
        /// Latency-sensitive work: runs with `flags.interactive` in the slot.
        public var interactive: Bool
        /// `releaseTicks` counts from the op's start (a frame clock), else
        /// from the previous job's end (think time).
        public var absoluteRelease: Bool
        public var releaseTicks: UInt64
        /// SPIN iterations (`SpinCalibration` turns time into iterations).
        public var computeIterations: UInt64
        /// Read-modify-writes of a pseudo-random cache line of the buffer.
        public var memoryIterations: UInt64

        public init(
            interactive: Bool = false, absoluteRelease: Bool = false, releaseTicks: UInt64, computeIterations: UInt64,
            memoryIterations: UInt64 = 0
        ) {
            self.interactive = interactive
            self.absoluteRelease = absoluteRelease
            self.releaseTicks = releaseTicks
            self.computeIterations = computeIterations
            self.memoryIterations = memoryIterations
        }
    }

    /// What the guest recorded for one job, TSC ticks.
    public struct Record: Sendable, Equatable {
        /// When the job was due.
        public var releaseTSC: UInt64
        /// When the vCPU ran it (back from its idle: includes the wake-up).
        public var startTSC: UInt64
        public var endTSC: UInt64
        /// The estimate at the job's end, 0...1024.
        public var utilization: UInt32
        /// Requests the guest had sent by then (since the block was written).
        public var requests: UInt32

        /// Release → running again (0 when the job started late because the previous one overran).
        public var wakeTicks: UInt64 { startTSC > releaseTSC ? startTSC - releaseTSC : 0 }
        /// Release → done.
        public var responseTicks: UInt64 { endTSC > releaseTSC ? endTSC - releaseTSC : 0 }
    }

    /// The guest's state after a run (read back from the block).
    public struct State: Sendable, Equatable {
        /// The estimate, 0...1024 (16 fraction bits).
        public var utilization: Double
        public var requests: UInt64
        public var kicks: UInt64
        /// Idle stores the guest made.
        public var idleStores: UInt64
        public var ticks: UInt64
        /// The performance level last requested, kHz (0 = none).
        public var lastPerformanceKHz: UInt64
        /// The last cur_perf the guest read (0 = never read).
        public var lastCurrentPerformanceKHz: UInt64
    }

    /// Byte offsets of the block's fields.
    public enum Field {
        public static let jobs = 0
        public static let records = 8
        public static let kind = 16
        public static let target = 24
        public static let doorbell = 32
        public static let perfRead = 40
        public static let idle = 48
        public static let tick = 56
        public static let period = 64
        public static let rateLimit = 72
        public static let nanosecondsPerTick = 80
        public static let idleMinimum = 88
        public static let maximumKHz = 96
        public static let tableLength = 104
        public static let table = 112
        public static let buffer = 176
        public static let bufferMask = 184
        public static let flags = 192
        public static let decay = 200
        public static let utilization = 208
        public static let periodPosition = 216
        public static let periodRunning = 224
        public static let lastUpdate = 232
        public static let lastRequest = 240
        public static let lastPerformance = 248
        public static let lastFlags = 256
        public static let scale = 264
        public static let rng = 272
        public static let nextTick = 280
        public static let requests = 288
        public static let kicks = 296
        public static let idleStores = 304
        public static let ticks = 312
        public static let lastCurrentPerformance = 320
        public static let start = 328
        public static let runningFlags = 336
    }

    /// Bytes of the block; the jobs follow at `jobsOffset`.
    public static let size = 344
    public static let jobsOffset = 0x200
    public static let jobSize = 32
    public static let recordSize = 32
    /// The upstream driver's table holds up to 64 entries; the guest's copy 16.
    public static let maximumTableEntries = 16

    public var kind: Kind
    /// `set_perf` (`.store`) or the slot (`.publish`).
    public var target: UInt64 = 0
    public var doorbell: UInt64 = 0
    /// `cur_perf` of this vCPU, read every tick; 0 = no device to read.
    public var currentPerformanceAddress: UInt64 = 0
    /// Where idles are stored; 0 = the guest spins through its idles (the
    /// host thread never sleeps).
    public var idleAddress: UInt64 = GuestLayout.idleAddress
    public var tickTicks: UInt64
    public var periodTicks: UInt64
    public var rateLimitTicks: UInt64
    /// Guest TSC ticks per µs (the VMM's calibration): converts idle ticks to ns.
    public var ticksPerMicrosecond: Double
    /// Idles shorter than this are spun (a cpuidle governor polls short gaps).
    public var idleMinimumTicks: UInt64
    /// The driver's table, ascending, kHz (its last entry is the maximum).
    public var tableKHz: [UInt32]
    public var buffer: UInt64 = 0
    /// Bytes of the buffer: a power of two of at least 64, or 0 without memory work.
    public var bufferSize: UInt64 = 0
    public var flags: (normal: UInt32, interactive: UInt32) = (0, 0)
    /// PELT's decay per period, y (y^32 = 1/2 for Linux's 32 ms half-life).
    public var decay: Double = Self.linuxDecay
    /// The estimate to start from, 0...1024.
    public var initialUtilization: Double = 0
    /// Seed of the memory loop's xorshift64 (0 is replaced by 1).
    public var seed: UInt64 = 0x2545_F491_4F6C_DD1D

    /// Linux's PELT: a contribution halves in 32 periods of 1024 µs.
    public static let linuxDecay = pow(0.5, 1.0 / 32.0)

    public init(
        kind: Kind, tickTicks: UInt64, periodTicks: UInt64, rateLimitTicks: UInt64, ticksPerMicrosecond: Double,
        idleMinimumTicks: UInt64, tableKHz: [UInt32]
    ) {
        self.kind = kind
        self.tickTicks = tickTicks
        self.periodTicks = periodTicks
        self.rateLimitTicks = rateLimitTicks
        self.ticksPerMicrosecond = ticksPerMicrosecond
        self.idleMinimumTicks = idleMinimumTicks
        self.tableKHz = tableKHz
    }

    public static func == (l: Self, r: Self) -> Bool {
        l.kind == r.kind && l.target == r.target && l.doorbell == r.doorbell
            && l.currentPerformanceAddress == r.currentPerformanceAddress && l.idleAddress == r.idleAddress
            && l.tickTicks == r.tickTicks && l.periodTicks == r.periodTicks && l.rateLimitTicks == r.rateLimitTicks
            && l.ticksPerMicrosecond == r.ticksPerMicrosecond && l.idleMinimumTicks == r.idleMinimumTicks
            && l.tableKHz == r.tableKHz && l.buffer == r.buffer && l.bufferSize == r.bufferSize && l.flags == r.flags
            && l.decay == r.decay && l.initialUtilization == r.initialUtilization && l.seed == r.seed
    }

    /// y in the guest's 16.16 fixed point.
    public var decayFixed: UInt64 { UInt64((min(max(decay, 0), 65535.0 / 65536) * 65536).rounded()) }

    /// ns per tick in the guest's 32.32 fixed point.
    public var nanosecondsPerTickFixed: UInt64 {
        ticksPerMicrosecond > 0 ? UInt64((1000 / ticksPerMicrosecond * 4_294_967_296).rounded()) : 0
    }

    /// Bytes from the block's address that the block, `jobs` jobs and their records take.
    public static func footprint(jobs: Int) -> UInt64 {
        UInt64(jobsOffset + (jobSize + recordSize) * max(jobs, 0))
    }

    /// Guest address of the records of a block at `gpa` with `jobs` jobs.
    public static func recordsAddress(block gpa: UInt64, jobs: Int) -> UInt64 {
        gpa + UInt64(jobsOffset + jobSize * max(jobs, 0))
    }

    /// Copies the block, `jobs` and room for their records into `region` at
    /// guest address `gpa`, with a fresh state (the estimate at
    /// `initialUtilization`, no request sent yet).
    /// - Throws: `KVMError.invalidArgument` when the block does not fit or
    ///   is not 64-byte aligned, the table is empty, too long or not
    ///   ascending, a period is 0, or memory work has no power-of-two buffer.
    public func write(jobs: [Job], to region: GuestMemoryRegion, at gpa: UInt64) throws(KVMError) {
        let bytes = Self.footprint(jobs: jobs.count)
        guard gpa % 64 == 0, let offset = region.offset(of: gpa), UInt64(offset) + bytes <= UInt64(region.size) else {
            throw .invalidArgument("a workload of \(jobs.count) jobs at 0x\(String(gpa, radix: 16)) does not fit in RAM")
        }
        guard !tableKHz.isEmpty, tableKHz.count <= Self.maximumTableEntries, tableKHz.first ?? 0 > 0,
            zip(tableKHz, tableKHz.dropFirst()).allSatisfy({ $0 < $1 })
        else {
            throw .invalidArgument("a workload's table needs 1...\(Self.maximumTableEntries) ascending entries above 0, not \(tableKHz)")
        }
        guard tickTicks > 0, periodTicks > 0, periodTicks < 1 << 36, ticksPerMicrosecond > 0 else {
            throw .invalidArgument("a workload needs a tick, a PELT period (below 2^36 ticks) and a TSC rate")
        }
        if jobs.contains(where: { $0.memoryIterations > 0 }) {
            guard bufferSize >= 64, bufferSize & (bufferSize - 1) == 0, buffer % 64 == 0,
                let start = region.offset(of: buffer), UInt64(start) + bufferSize <= UInt64(region.size)
            else {
                throw .invalidArgument("memory work needs a buffer of a power of two bytes (at least 64) in RAM")
            }
        }
        let records = Self.recordsAddress(block: gpa, jobs: jobs.count)
        var words = [UInt64](repeating: 0, count: Self.size / 8)
        func put(_ value: UInt64, _ field: Int) { words[field / 8] = value }
        put(gpa + UInt64(Self.jobsOffset), Field.jobs)
        put(records, Field.records)
        put(kind.rawValue, Field.kind)
        put(target, Field.target)
        put(doorbell, Field.doorbell)
        put(currentPerformanceAddress, Field.perfRead)
        put(idleAddress, Field.idle)
        put(tickTicks, Field.tick)
        put(periodTicks, Field.period)
        put(rateLimitTicks, Field.rateLimit)
        put(nanosecondsPerTickFixed, Field.nanosecondsPerTick)
        put(idleMinimumTicks, Field.idleMinimum)
        put(UInt64(tableKHz.last ?? 1), Field.maximumKHz)
        put(UInt64(tableKHz.count), Field.tableLength)
        for index in stride(from: 0, to: Self.maximumTableEntries, by: 2) {
            let low = index < tableKHz.count ? UInt64(tableKHz[index]) : 0
            let high = index + 1 < tableKHz.count ? UInt64(tableKHz[index + 1]) : 0
            put(low | high << 32, Field.table + 4 * index)
        }
        put(buffer, Field.buffer)
        put(bufferSize > 0 ? bufferSize - 1 : 0, Field.bufferMask)
        put(UInt64(flags.normal) | UInt64(flags.interactive) << 32, Field.flags)
        put(decayFixed, Field.decay)
        put(UInt64((min(max(initialUtilization, 0), 1024) * 65536).rounded()), Field.utilization)
        put(1024, Field.scale)
        put(UInt64(flags.normal), Field.runningFlags)
        put(seed == 0 ? 1 : seed, Field.rng)
        for (index, word) in words.enumerated() { region.store64(word, at: offset + 8 * index) }
        for (index, job) in jobs.enumerated() {
            let at = offset + Self.jobsOffset + Self.jobSize * index
            let jobFlags = (job.interactive ? 1 : 0) | (job.absoluteRelease ? 2 : 0) as UInt64
            region.store64(jobFlags, at: at)
            region.store64(job.releaseTicks, at: at + 8)
            region.store64(job.computeIterations, at: at + 16)
            region.store64(job.memoryIterations, at: at + 24)
        }
        let recordsOffset = offset + Self.jobsOffset + Self.jobSize * jobs.count
        for index in 0..<(jobs.count * Self.recordSize / 8) { region.store64(0, at: recordsOffset + 8 * index) }
    }

    /// The guest's state in the block at `gpa`.
    public static func state(in region: GuestMemoryRegion, at gpa: UInt64) -> State? {
        guard let offset = region.offset(of: gpa), offset + size <= region.size else { return nil }
        func word(_ field: Int) -> UInt64 { region.load64(at: offset + field) }
        return State(
            utilization: Double(word(Field.utilization)) / 65536, requests: word(Field.requests),
            kicks: word(Field.kicks), idleStores: word(Field.idleStores), ticks: word(Field.ticks),
            lastPerformanceKHz: word(Field.lastPerformance), lastCurrentPerformanceKHz: word(Field.lastCurrentPerformance))
    }

    /// The first `count` records of a block at `gpa` with `count` jobs.
    public static func records(in region: GuestMemoryRegion, at gpa: UInt64, count: Int) -> [Record] {
        guard let start = region.offset(of: recordsAddress(block: gpa, jobs: count)), count > 0,
            start + recordSize * count <= region.size
        else { return [] }
        return (0..<count).map { index in
            let at = start + recordSize * index
            let last = region.load64(at: at + 24)
            return Record(
                releaseTSC: region.load64(at: at), startTSC: region.load64(at: at + 8), endTSC: region.load64(at: at + 16),
                utilization: UInt32(truncatingIfNeeded: last), requests: UInt32(truncatingIfNeeded: last >> 32))
        }
    }
}
