import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqKVM

/// One request path set up on a live vCPU: where its requests go and how
/// the guest sees one applied. Runs the REQUESTS op untimed (cost) and
/// timed (latency); the parameter block lives at `block`, the time stamps
/// right after it in the vCPU's scratch RAM.
struct RequestPath {
    let kind: RequestPathKind
    /// Path 3 without the latency flag (`Rig.kickedWithoutSyscall`): the
    /// daemon then changes no slice, and on a host without uclamp makes no
    /// system call at all — the difference to path 3 is the sched_setattr.
    var isVariant = false
    let vcpu: VCPU
    let ram: GuestMemoryRegion
    /// Guest address of the parameter block; samples follow at `block + sampleOffset`.
    let block: UInt64
    /// Bytes of scratch RAM from `block`: bounds the samples of one run.
    let scratchBytes: UInt64
    /// kind, target, doorbell, field, values, flags, and (paths 2-4) the
    /// watched word, mask and expected values. Timing fields are set per run.
    let template: RequestLoopParameters

    static let sampleOffset: UInt64 = 0x1000

    /// Key in results and progress: path 3′ for the variant.
    var name: String { isVariant ? RequestPathKind.kickedWithoutSyscallName : kind.name }
    var title: String { isVariant ? RequestPathKind.kickedWithoutSyscallTitle : kind.title }

    /// Timed requests one run can record.
    var sampleCapacity: Int { Int((scratchBytes - Self.sampleOffset) / UInt64(RequestLoopParameters.sampleSize)) }

    // MARK: Cost

    struct Cost {
        /// Median over rounds of (run of N − run of 0) / N, µs.
        var microsecondsPerRequest: Double
        var rounds: [Double]
        var exitsPerRequest: Double
        var kicksPerRequest: Double

        /// Rounds measured apart (interleaved with other paths), as one.
        static func merged(_ parts: [Cost]) -> Cost? {
            let rounds = parts.flatMap(\.rounds)
            guard !rounds.isEmpty else { return nil }
            let weight = { (part: Cost) in Double(part.rounds.count) }
            let total = parts.reduce(0) { $0 + weight($1) }
            return Cost(
                microsecondsPerRequest: rounds.sorted()[rounds.count / 2], rounds: rounds,
                exitsPerRequest: parts.reduce(0) { $0 + $1.exitsPerRequest * weight($1) } / total,
                kicksPerRequest: parts.reduce(0) { $0 + $1.kicksPerRequest * weight($1) } / total)
        }
    }

    /// N requests back to back, untimed and never waiting: what the vCPU
    /// itself spends per request when it does not wait for the result.
    /// `recordingSamples` takes the two time stamps per request anyway (to
    /// measure what they cost); N must then fit `sampleCapacity`.
    func measureCost(
        requests: UInt32, rounds: Int, timeout: Duration, recordingSamples: Bool = false
    ) throws(BenchError) -> Cost {
        var untimed = template
        untimed.watch = 0
        untimed.samples = recordingSamples ? block + Self.sampleOffset : 0
        untimed.gapMask = 0
        var perRound: [Double] = []
        var exits: UInt64 = 0
        var kicks: UInt64 = 0
        for _ in 0..<max(rounds, 1) {
            let empty = try run(untimed, count: 0, timeout: timeout)
            let full = try run(untimed, count: requests, timeout: timeout)
            perRound.append(max(0, Timing.microseconds(full.duration - empty.duration)) / Double(max(requests, 1)))
            exits += full.exits.total
            kicks += full.results.first?.doorbellWrites ?? 0
        }
        let total = Double(max(requests, 1)) * Double(perRound.count)
        return Cost(
            microsecondsPerRequest: perRound.sorted()[perRound.count / 2], rounds: perRound,
            exitsPerRequest: Double(exits) / total, kicksPerRequest: Double(kicks) / total)
    }

    // MARK: Latency

    struct Latency {
        /// Per timed request: ticks until it left the vCPU, and until applied (nil: abandoned).
        var samples: [RequestLoopParameters.Sample]
        /// Per timed request: it was request A (the fast one; latency-sensitive
        /// on the shared page), not B.
        var isRequestA: [Bool] = []
        var exits: UInt64
        var kicks: UInt64
        var abandoned: UInt64
        /// Sum of the runs' durations (for the daemon's per-request counters).
        var duration: Duration

        static let empty = Latency(samples: [], isRequestA: [], exits: 0, kicks: 0, abandoned: 0, duration: .zero)

        static func += (total: inout Latency, more: Latency) {
            total.samples += more.samples
            total.isRequestA += more.isRequestA
            total.exits += more.exits
            total.kicks += more.kicks
            total.abandoned += more.abandoned
            total.duration += more.duration
        }
    }

    /// `count` timed requests (A, B, A, ...), each awaited until the host
    /// shows it applied (paths 2-4) or until its exit returned (path 1),
    /// with random guest work of `0...gapMask` spins after each, in runs of
    /// `perRun`; `progress` is called after each run with the samples so far.
    func measureLatency(
        count: Int, perRun: Int, gapMask: UInt64, timeoutTicks: UInt64, seed: UInt64, timeout: Duration,
        primer: RequestLoopParameters?, progress: (Int) -> Void
    ) throws(BenchError) -> Latency {
        if let primer { try prime(primer, timeoutTicks: timeoutTicks, timeout: timeout) }
        var timed = template
        timed.timeoutTicks = timeoutTicks
        timed.samples = block + Self.sampleOffset
        timed.gapMask = gapMask
        timed.seed = seed
        let runSize = max(2, min(perRun, sampleCapacity) & ~1)  // even: each run starts with A after B
        var result = Latency.empty
        result.samples.reserveCapacity(count)
        while result.samples.count < count {
            let requests = min(runSize, count - result.samples.count)
            let run = try self.run(timed, count: UInt32(requests), timeout: timeout)
            result.samples += timed.samples(in: ram, count: requests)
            result.isRequestA += (0..<requests).map { $0 % 2 == 0 }  // each run starts with A
            result.exits += run.exits.total
            result.kicks += run.results.first?.doorbellWrites ?? 0
            result.abandoned += run.results.first?.abandonedWaits ?? 0
            result.duration += run.duration
            // The guest advanced the generator in place: carry it on.
            timed.seed = ram.load64(at: Int(block) + RequestLoopParameters.Field.rng)
            progress(result.samples.count)
        }
        return result
    }

    /// One awaited request of a value no timed loop sends: once its hint
    /// shows, every earlier request (a backlog of posted WRITEs after a cost
    /// round) has been handled, and the next request A is a change.
    private func prime(_ primer: RequestLoopParameters, timeoutTicks: UInt64, timeout: Duration) throws(BenchError) {
        var block = primer
        block.timeoutTicks = timeoutTicks * 10
        block.samples = 0
        block.gapMask = 0
        let run = try self.run(block, count: 1, timeout: timeout)
        if run.results.first?.abandonedWaits ?? 0 > 0 {
            throw .measurement("\(kind.title): the daemon never showed the primer request applied")
        }
    }

    private func run(_ parameters: RequestLoopParameters, count: UInt32, timeout: Duration) throws(BenchError) -> GuestRunResult {
        do {
            try parameters.write(to: ram, at: block, count: count)
            return try vcpu.run(script: [.requests(parameters: block, count: count)], timeout: timeout)
        } catch {
            throw .kvm(operation: "running \(count) requests of path \(kind.rawValue)", error)
        }
    }
}
