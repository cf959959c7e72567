import Foundation
import VCPUFreqBPF
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

/// `vcpufreq bench sched`: the sched_ext scheduler against EEVDF and EEVDF
/// with the slice hint, side by side in one run (bench/sched.md): wake-up
/// delay of a latency-flagged vCPU under contention, placement accuracy,
/// and the cost on a context-switch ping-pong. Ratios only: absolute times
/// under QEMU TCG say little about a real host.
public enum SchedBenchmark {
    public struct Options: Sendable {
        public var executable: String
        public var quick = false
        /// Rounds of the three latency modes (each round runs all three).
        public var rounds = 3
        public var seconds = 3.0
        public var hogsPerCPU = 2
        public var roundTrips = 20_000
        public var repetitions = 5

        public init(executable: String, quick: Bool) {
            self.executable = executable
            self.quick = quick
            if quick {
                rounds = 1
                seconds = 1
                roundTrips = 2000
                repetitions = 2
            }
        }
    }

    /// Targets of the issue: sched-ext p99 ≤ 0.25 × EEVDF's and ≤ 0.5 × EEVDF-with-slice's; ping-pong ≥ 0.85.
    public static let targets = (vsEEVDF: 0.25, vsSlice: 0.5, pingPong: 0.85)

    public struct ModeSummary: Codable, Equatable, Sendable {
        public var mode: String
        /// Median over rounds of each round's figure, µs.
        public var p50Microseconds: Double
        public var p99Microseconds: Double
        public var kernelMeanRunDelayMicroseconds: Double
        public var wakeups: UInt64
    }

    public struct Report: Codable, Sendable {
        public var date: String
        public var machine: MachineDescription
        public var build: String
        public var quick: Bool
        public var note: String
        public var rounds: Int
        public var secondsPerRun: Double
        public var hogsPerCPU: Int
        public var modes: [ModeSummary]
        public var runs: [SchedExperiment.Latency]
        public var placement: SchedExperiment.Placement
        public var pingPong: SchedExperiment.PingPong
        public var latencyP99RatioVsEEVDF: Double?
        public var latencyP99RatioVsSlice: Double?
        public var pingpongThroughputRatio: Double?
        /// Share of hinted runtime in the right cluster (the worse of the two vCPUs).
        public var placementAccuracy: Double
    }

    public static func run(_ options: Options, build: String, log: (String) -> Void) throws -> Report {
        if let problem = SchedExtSupport.probe().problem { throw BenchError("no sched_ext here: \(problem)") }
        let cpus = (try? ThreadScheduling.affinity(of: ThreadScheduling.currentThreadID()).ids) ?? []
        guard cpus.count >= 2 else { throw BenchError("needs two CPUs, has \(cpus.count)") }
        let lab = try SchedLab(executable: options.executable, cpus: cpus)
        defer { lab.cleanUp() }
        try? ThreadScheduling.setAffinity(CPUList(lab.topology.little), of: ThreadScheduling.currentThreadID())

        var runs: [SchedExperiment.Latency] = []
        var placement: SchedExperiment.Placement?
        for round in 0..<options.rounds {
            // The order turns every round, so drift hits every mode alike.
            let modes = SchedExperiment.LatencyMode.allCases
            for step in 0..<modes.count {
                let mode = modes[(step + round) % modes.count]
                log("round \(round + 1)/\(options.rounds): \(mode.rawValue)")
                switch mode {
                case .eevdf:
                    runs.append(
                        try SchedExperiment.latency(
                            lab: lab, mode: mode, daemon: nil, seconds: options.seconds, hogsPerCPU: options.hogsPerCPU))
                case .eevdfSlice, .schedExt:
                    let daemon = try lab.startDaemon(scheduler: mode == .schedExt)
                    defer { daemon.stop(); _ = SchedExtKernel.waitUntilDisabled() }
                    if mode == .schedExt {
                        _ = try lab.waitForScheduler(daemon)
                        if placement == nil {
                            log("placement")
                            placement = try SchedExperiment.placement(lab: lab, daemon: daemon, seconds: options.seconds)
                        }
                    }
                    runs.append(
                        try SchedExperiment.latency(
                            lab: lab, mode: mode, daemon: daemon, seconds: options.seconds, hogsPerCPU: options.hogsPerCPU))
                }
            }
        }
        log("ping-pong")
        let pingPong = try SchedExperiment.pingPong(lab: lab, roundTrips: options.roundTrips, repetitions: options.repetitions)
        guard let placement else { throw BenchError("the placement run did not happen") }

        let modes = SchedExperiment.LatencyMode.allCases.map { mode -> ModeSummary in
            let mine = runs.filter { $0.mode == mode }
            return ModeSummary(
                mode: mode.rawValue, p50Microseconds: SchedExperiment.median(mine.map(\.p50Microseconds)) ?? 0,
                p99Microseconds: SchedExperiment.median(mine.map(\.p99Microseconds)) ?? 0,
                kernelMeanRunDelayMicroseconds: SchedExperiment.median(mine.map(\.kernelMeanRunDelayMicroseconds)) ?? 0,
                wakeups: mine.reduce(0) { $0 + $1.wakeups })
        }
        func p99(_ mode: SchedExperiment.LatencyMode) -> Double? {
            modes.first { $0.mode == mode.rawValue }.flatMap { $0.p99Microseconds > 0 ? $0.p99Microseconds : nil }
        }
        let ext = p99(.schedExt)
        let machine = MachineDescription.current()
        return Report(
            date: ISO8601DateFormatter().string(from: Date()), machine: machine, build: build, quick: options.quick,
            note: machine.isVirtualMachine || machine.cpuModel.contains("QEMU")
                ? "Measured in a QEMU guest (TCG when the host has no nested KVM): absolute times are those of an emulated CPU and say little about a real host; the ratios compare the three modes in one run."
                : "Absolute times are this machine's; the ratios compare the three modes in one run.",
            rounds: options.rounds, secondsPerRun: options.seconds, hogsPerCPU: options.hogsPerCPU, modes: modes, runs: runs,
            placement: placement, pingPong: pingPong,
            latencyP99RatioVsEEVDF: ext.flatMap { e in p99(.eevdf).map { e / $0 } },
            latencyP99RatioVsSlice: ext.flatMap { e in p99(.eevdfSlice).map { e / $0 } },
            pingpongThroughputRatio: pingPong.ratio,
            placementAccuracy: min(placement.highShareOnBig, placement.lowShareOnLittle))
    }
}

extension SchedBenchmark.Report {
    /// bench/results/sched.md.
    public func markdown() -> String {
        func number(_ value: Double?, _ digits: Int = 2) -> String { value.map { String(format: "%.\(digits)f", $0) } ?? "-" }
        func verdict(_ value: Double?, _ target: Double, atMost: Bool) -> String {
            guard let value else { return "not measured" }
            return (atMost ? value <= target : value >= target) ? "met" : "missed"
        }
        let t = SchedBenchmark.targets
        var lines = [
            "# `vcpufreq bench sched`", "",
            "\(date), \(machine.summary); \(build) build\(quick ? ", --quick" : ""). \(note)", "",
            "A vCPU thread pinned to the big CPUs wakes every 1 ms and works 50 µs while \(hogsPerCPU) CPU hogs run on every "
                + "CPU and a nice-10 thread on the first big CPU; \(rounds) round(s) of \(number(secondsPerRun, 1)) s per mode, "
                + "the mode order turning each round. Wake-up delay is the thread's own (time past its deadline); the "
                + "kernel's mean run delay is schedstat's run_delay / runs.", "",
            "| mode | p50 µs | p99 µs | kernel mean run delay µs | wake-ups |", "|---|---:|---:|---:|---:|",
        ]
        for mode in modes {
            lines.append(
                "| \(mode.mode) | \(number(mode.p50Microseconds, 0)) | \(number(mode.p99Microseconds, 0)) | \(number(mode.kernelMeanRunDelayMicroseconds, 1)) | \(mode.wakeups) |")
        }
        lines += [
            "", "| ratio | value | target | |", "|---|---:|---:|---|",
            "| latency_p99_ratio_vs_eevdf (sched-ext p99 ÷ EEVDF p99) | \(number(latencyP99RatioVsEEVDF)) | ≤ \(t.vsEEVDF) | \(verdict(latencyP99RatioVsEEVDF, t.vsEEVDF, atMost: true)) |",
            "| latency_p99_ratio_vs_slice (sched-ext p99 ÷ EEVDF + 100 µs slice p99) | \(number(latencyP99RatioVsSlice)) | ≤ \(t.vsSlice) | \(verdict(latencyP99RatioVsSlice, t.vsSlice, atMost: true)) |",
            "| pingpong_throughput_ratio (with ÷ without the scheduler) | \(number(pingpongThroughputRatio)) | ≥ \(t.pingPong) | \(verdict(pingpongThroughputRatio, t.pingPong, atMost: false)) |",
            "", "Placement: util_min \(placement.highUtil) on the big cluster for \(number(placement.highShareOnBig * 100, 1)) % of its runtime, "
                + "util_min \(placement.lowUtil) on the little one for \(number(placement.lowShareOnLittle * 100, 1)) % (daemon host truth, per CPU, \(number(placement.seconds, 1)) s).",
            "",
            "Ping-pong: \(pingPong.roundTrips) round trips on one CPU, \(pingPong.without.count) runs each way; median "
                + "\(number(SchedExperiment.median(pingPong.without), 0)) round trips/s without, \(number(SchedExperiment.median(pingPong.with), 0)) with.",
            "",
        ]
        return lines.joined(separator: "\n")
    }
}
