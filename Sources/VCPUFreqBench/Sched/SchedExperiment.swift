import Foundation
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqProtocol

/// The scheduler experiments `scheduler selftest` asserts on and `bench
/// sched` reports: placement by capacity, wake-up delay of a latency-flagged
/// vCPU under contention in three modes, fairness to the hogs around it, and
/// the cost on a context-switch ping-pong. Every figure comes from the kernel
/// (schedstat, the daemon's BPF host truth) or from the woken thread's own
/// clock; nothing from what our code believes it did.
public enum SchedExperiment {
    // MARK: Placement

    public struct Placement: Codable, Equatable, Sendable {
        public var seconds: Double
        /// util_min of the two hinted vCPUs.
        public var highUtil: UInt32
        public var lowUtil: UInt32
        /// Share of each one's time on CPU spent in its cluster (BPF host truth, per CPU).
        public var highShareOnBig: Double
        public var lowShareOnLittle: Double
        /// Their time on CPU by CPU over the window, ns.
        public var highByCPU: [Int: UInt64]
        public var lowByCPU: [Int: UInt64]
        /// STATUS `scheduler.cpus[].util_sum` seen on the big and little CPUs while both ran.
        public var utilSumsBig: [Int64]
        public var utilSumsLittle: [Int64]
        /// The VM's shared page ("bpf-map": the scheduler reads its slots in
        /// place) and the scheduler's hint lookups answered from a slot over the window.
        public var pageKind: String? = nil
        public var slotReads: UInt64? = nil
    }

    /// Two vCPUs (5 ms of work, 1 ms asleep, unpinned) with util_min 900 and
    /// 100 for `seconds`; where they ran, from the daemon's host truth.
    static func placement(lab: SchedLab, daemon: DaemonProcess, seconds: Double) throws -> Placement {
        let body = SchedWorker.Body.burnAndSleep(burnNanoseconds: 5_000_000, sleepNanoseconds: 1_000_000)
        // Free to run anywhere: the scheduler alone decides.
        let anywhere = CPUList(lab.topology.cpus)
        let high = SchedWorker(name: "sched-high", body: body, cpus: anywhere)
        let low = SchedWorker(name: "sched-low", body: body, cpus: anywhere)
        defer { high.stop(); low.stop() }
        let vm = try SchedVM(lab: lab, daemon: daemon, name: "placement", threads: [high, low])
        defer { vm.detach() }
        let (highUtil, lowUtil): (UInt32, UInt32) = (900, 100)
        let slice = UInt32(lab.topology.latencySliceMicroseconds)
        try vm.request(vcpu: 0, utilization: highUtil, latency: false, sliceMicroseconds: slice)
        try vm.request(vcpu: 1, utilization: lowUtil, latency: false, sliceMicroseconds: slice)
        high.start()
        low.start()
        usleep(200_000)
        let before = try lab.status(daemon)
        var bigSums: [Int64] = []
        var littleSums: [Int64] = []
        let samples = 5
        for _ in 0..<samples {
            usleep(UInt32(seconds / Double(samples) * 1e6))
            let cpus = try lab.status(daemon).daemon.scheduler?.cpus ?? []
            for cpu in cpus {
                if lab.topology.big.contains(cpu.cpu) { bigSums.append(cpu.utilSum) }
                if lab.topology.little.contains(cpu.cpu) { littleSums.append(cpu.utilSum) }
            }
        }
        let after = try lab.status(daemon)
        func byCPU(_ vcpu: Int) -> [Int: UInt64] {
            let old = before.vms.first?.vcpus.first { $0.index == vcpu }?.hostTruth?.runtimeByCPU ?? []
            let new = after.vms.first?.vcpus.first { $0.index == vcpu }?.hostTruth?.runtimeByCPU ?? []
            var result: [Int: UInt64] = [:]
            for entry in new {
                let then = old.first { $0.cpu == entry.cpu }?.nanoseconds ?? 0
                if entry.nanoseconds > then { result[entry.cpu] = entry.nanoseconds - then }
            }
            return result
        }
        func share(_ runtime: [Int: UInt64], on cpus: [Int]) -> Double {
            let total = runtime.values.reduce(0, +)
            guard total > 0 else { return 0 }
            return Double(runtime.filter { cpus.contains($0.key) }.values.reduce(0, +)) / Double(total)
        }
        let highByCPU = byCPU(0)
        let lowByCPU = byCPU(1)
        var placed = Placement(
            seconds: seconds, highUtil: highUtil, lowUtil: lowUtil,
            highShareOnBig: share(highByCPU, on: lab.topology.big), lowShareOnLittle: share(lowByCPU, on: lab.topology.little),
            highByCPU: highByCPU, lowByCPU: lowByCPU, utilSumsBig: bigSums, utilSumsLittle: littleSums)
        placed.pageKind = vm.vm.pageKind == .bpfMap ? "bpf-map" : "memfd"
        if let old = before.daemon.scheduler?.counters["slot_reads"], let new = after.daemon.scheduler?.counters["slot_reads"] {
            placed.slotReads = new >= old ? new - old : 0
        }
        return placed
    }

    // MARK: Latency and fairness

    public enum LatencyMode: String, Codable, CaseIterable, Sendable {
        /// No hint at all: the kernel's EEVDF as it is.
        case eevdf
        /// The daemon without a scheduler: the latency flag becomes a 100 µs EEVDF slice.
        case eevdfSlice = "eevdf+slice"
        /// The daemon with `--scheduler sched-ext`: the flag becomes a boost.
        case schedExt = "sched-ext"
    }

    public struct Latency: Codable, Equatable, Sendable {
        public var mode: LatencyMode
        public var seconds: Double
        public var hogsPerCPU: Int
        /// The woken thread's own measure: wake-up delay past its deadline, µs.
        public var wakeups: UInt64
        public var p50Microseconds: Double
        public var p99Microseconds: Double
        public var meanMicroseconds: Double
        /// The kernel's: its wait for a CPU per run (schedstat run_delay / runs), µs.
        public var kernelMeanRunDelayMicroseconds: Double
        /// Time on CPU over the window, ns (schedstat): the latency thread,
        /// each hog (CPU, runtime), and the nice-10 background thread.
        public var latencyRuntimeNanoseconds: UInt64
        public var hogs: [HogRuntime]
        public var backgroundRuntimeNanoseconds: UInt64
        /// sched-ext only: the scheduler's boosts over the window.
        public var boosts: UInt64?
        public var boostPreemptions: UInt64?
        public var boostsExpired: UInt64?
        public var boostsDenied: UInt64?
        public var boostedRuntimeNanoseconds: UInt64?
    }

    public struct HogRuntime: Codable, Equatable, Sendable {
        public var cpu: Int
        public var runtimeNanoseconds: UInt64
    }

    /// Nice value of the background thread: weight 110 of 1024 (EEVDF), 11
    /// of 100 (sched_ext), a small but measurable share beside the hogs.
    static let backgroundNice: Int32 = 10

    /// The share of its CPU the background thread is owed beside
    /// `hogsPerCPU` nice-0 hogs, by weight (110 against 1024 each).
    static func backgroundShare(hogsPerCPU: Int) -> Double { 110.0 / (110.0 + 1024.0 * Double(hogsPerCPU)) }

    /// A vCPU thread (pinned to the big CPUs) waking every 1 ms to work
    /// 50 µs while `hogsPerCPU` CPU hogs run on every CPU and a nice-10
    /// thread on the first big CPU; `daemon` (nil for plain EEVDF) marks it
    /// latency-sensitive with util 900.
    static func latency(
        lab: SchedLab, mode: LatencyMode, daemon: DaemonProcess?, seconds: Double, hogsPerCPU: Int
    ) throws -> Latency {
        let big = CPUList(lab.topology.big)
        let sensitive = SchedWorker(
            name: "sched-latency", body: .periodic(periodNanoseconds: 1_000_000, workNanoseconds: 50_000), cpus: big)
        var hogs: [(cpu: Int, worker: SchedWorker)] = []
        for cpu in lab.topology.cpus {
            for index in 0..<hogsPerCPU {
                hogs.append((cpu, SchedWorker(name: "sched-hog-\(cpu)-\(index)", body: .spin, cpus: CPUList([cpu]))))
            }
        }
        let background = SchedWorker(
            name: "sched-background", body: .spin, cpus: CPUList(Array(lab.topology.big.prefix(1))),
            nice: Self.backgroundNice)
        let everyone = [sensitive, background] + hogs.map(\.worker)
        defer { for worker in everyone { worker.stop() } }
        if let failure = everyone.compactMap(\.failure).first { throw BenchError("worker setup: \(failure)") }
        var vm: SchedVM?
        if let daemon {
            vm = try SchedVM(lab: lab, daemon: daemon, name: "latency", threads: [sensitive])
            try vm?.request(
                vcpu: 0, utilization: 900, latency: true, sliceMicroseconds: UInt32(lab.topology.latencySliceMicroseconds))
        }
        defer { vm?.detach() }
        for worker in everyone { worker.start() }
        usleep(200_000)
        let counters0 = try daemon.map { try lab.status($0).daemon.scheduler?.counters }
        let stats0 = everyone.map { SchedStat.read(tid: $0.tid) }
        usleep(UInt32(seconds * 1e6))
        let stats1 = everyone.map { SchedStat.read(tid: $0.tid) }
        let counters1 = try daemon.map { try lab.status($0).daemon.scheduler?.counters }
        sensitive.stop()
        func delta(_ index: Int) -> SchedStat {
            guard let later = stats1[index], let earlier = stats0[index] else {
                return SchedStat(runtimeNanoseconds: 0, runDelayNanoseconds: 0, runs: 0)
            }
            return later.since(earlier)
        }
        let delays = sensitive.delays
        let summary = delays.summary
        func grown(_ name: String) -> UInt64? {
            guard mode == .schedExt, let later = counters1??[name] else { return nil }
            return later - min(later, counters0??[name] ?? 0)
        }
        return Latency(
            mode: mode, seconds: seconds, hogsPerCPU: hogsPerCPU, wakeups: delays.count,
            p50Microseconds: summary?.p50Microseconds ?? 0, p99Microseconds: summary?.p99Microseconds ?? 0,
            meanMicroseconds: summary?.meanMicroseconds ?? 0,
            kernelMeanRunDelayMicroseconds: delta(0).meanRunDelayMicroseconds ?? 0,
            latencyRuntimeNanoseconds: delta(0).runtimeNanoseconds,
            hogs: hogs.enumerated().map { HogRuntime(cpu: $0.element.cpu, runtimeNanoseconds: delta($0.offset + 2).runtimeNanoseconds) },
            backgroundRuntimeNanoseconds: delta(1).runtimeNanoseconds, boosts: grown("boosts"),
            boostPreemptions: grown("boost_preemptions"), boostsExpired: grown("boosts_expired"),
            boostsDenied: grown("boosts_denied"), boostedRuntimeNanoseconds: grown("boosted_runtime_ns"))
    }

    /// Fairness of one sched-ext run: each hog's time against its share of
    /// its CPU once the latency thread (on the big CPUs) and the background
    /// thread have had theirs — max-min fairness — less the boosted time and
    /// `tolerance` of the window. nil when every hog kept it, else why not.
    static func fairnessProblem(_ run: Latency, big: [Int], tolerance: Double = 0.15) -> String? {
        let window = run.seconds * 1e9
        for hog in run.hogs {
            var others = 0.0
            if big.contains(hog.cpu) {
                others += Double(run.latencyRuntimeNanoseconds) / Double(max(1, big.count))
                if hog.cpu == big.first { others += Double(run.backgroundRuntimeNanoseconds) }
            }
            let share = (window - others) / Double(max(1, run.hogsPerCPU))
            let boosted = Double(run.boostedRuntimeNanoseconds ?? 0) / Double(max(1, big.count))
            let floor = share - (big.contains(hog.cpu) ? boosted : 0) - tolerance * window / Double(max(1, run.hogsPerCPU))
            if Double(hog.runtimeNanoseconds) < floor {
                return "a hog on CPU \(hog.cpu) ran \(hog.runtimeNanoseconds / 1_000_000) ms of \(Int(run.seconds * 1000)) ms, "
                    + "below its fair share \(Int(share / 1e6)) ms less the boosted \(Int(boosted / 1e6)) ms and \(Int(tolerance * 100)) %"
            }
        }
        return nil
    }

    // MARK: Ping-pong

    public struct PingPong: Codable, Equatable, Sendable {
        public var roundTrips: Int
        /// Round trips per second of each repetition, without and with the scheduler.
        public var without: [Double]
        public var with: [Double]
        public var ratio: Double?
    }

    /// Two threads on one CPU passing a byte (ContextSwitchBenchmark), with
    /// the scheduler loaded in this process (on the lab's pin, no hints) and
    /// without, interleaved; the ratio of the medians.
    static func pingPong(lab: SchedLab, roundTrips: Int, repetitions: Int) throws -> PingPong {
        let clusters = try SchedulerClusters(host: lab.topology.host)
        let scheduler = SchedExtScheduler(configuration: .init(utilHintPinPath: lab.pinPath, clusters: clusters))
        let cpu = lab.topology.big.first ?? 0
        var result = PingPong(roundTrips: roundTrips, without: [], with: [], ratio: nil)
        for repetition in 0..<max(1, repetitions) {
            for loaded in repetition % 2 == 0 ? [false, true] : [true, false] {
                if loaded {
                    let status = scheduler.start()
                    guard status.isRunning else { throw BenchError("the scheduler did not load: \(status.summary)") }
                } else {
                    scheduler.stop()
                    _ = SchedExtKernel.waitUntilDisabled()
                }
                guard let run = ContextSwitchBenchmark.pingPong(roundTrips: roundTrips, cpu: cpu) else {
                    throw BenchError("the ping-pong threads could not be made")
                }
                if loaded { result.with.append(run.roundTripsPerSecond) } else { result.without.append(run.roundTripsPerSecond) }
            }
        }
        scheduler.stop()
        _ = SchedExtKernel.waitUntilDisabled()
        if let with = median(result.with), let without = median(result.without), without > 0 { result.ratio = with / without }
        return result
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }

}
