/// The result of `vcpufreq bench bpf`: what the attached scheduler programs
/// cost a context-switch-heavy workload, as ratios of one interleaved run
/// (`ContextSwitchBenchmark.compare`), with the samples and the conditions.
/// Written as JSON (Codable) and Markdown (bench/results/).
public struct BPFOverheadReport: Codable, Equatable, Sendable {
    /// Round trips per timed run (each: two context switches, two wake-ups).
    public var roundTrips: Int
    public var repetitions: Int
    /// The CPU both ping-pong threads are pinned to.
    public var cpu: Int
    /// Where it ran: `uname -r`, online CPUs, build configuration, date.
    public var kernel: String
    public var onlineProcessors: Int
    public var build: String
    public var date: String
    /// Round trips per second of every run, per mode.
    public var detached: [Double]
    public var attachedUntracked: [Double]
    public var attachedTracked: [Double]
    /// The monitor in the attached runs (`MonitorStatus.summary`).
    public var monitor: String

    public init(
        comparison: ContextSwitchBenchmark.Comparison, roundTrips: Int, repetitions: Int, cpu: Int, kernel: String,
        onlineProcessors: Int, build: String, date: String
    ) {
        self.roundTrips = roundTrips
        self.repetitions = repetitions
        self.cpu = cpu
        self.kernel = kernel
        self.onlineProcessors = onlineProcessors
        self.build = build
        self.date = date
        detached = comparison.detached
        attachedUntracked = comparison.attachedUntracked
        attachedTracked = comparison.attachedTracked
        monitor = comparison.monitorStatus.summary
    }

    /// Median of the runs, round trips/s; nil without runs.
    public static func median(_ values: [Double]) -> Double? {
        ContextSwitchBenchmark.Comparison.median(values)
    }

    /// Median attached-and-tracked throughput over median detached (1 = free).
    public var trackedRatio: Double? { Self.ratio(attachedTracked, detached) }
    /// Median attached-untracked throughput over median detached: what every
    /// other thread on the host pays.
    public var untrackedRatio: Double? { Self.ratio(attachedUntracked, detached) }

    /// Median over repetitions of (mode / detached) of the same repetition:
    /// the three runs of a repetition are adjacent in time, so slow drift and
    /// a neighbour's burst cancel in each ratio. nil unless every repetition
    /// has both runs.
    public func pairedRatio(_ values: [Double]) -> Double? {
        guard !values.isEmpty, values.count == detached.count else { return nil }
        return Self.median(zip(values, detached).compactMap { $1 > 0 ? $0 / $1 : nil })
    }

    /// Extra time per round trip of a mode over detached, ns (from the medians).
    public func extraNanosecondsPerRoundTrip(_ values: [Double]) -> Double? {
        guard let mode = Self.median(values), let base = Self.median(detached), mode > 0, base > 0 else { return nil }
        return 1e9 / mode - 1e9 / base
    }

    static func ratio(_ values: [Double], _ base: [Double]) -> Double? {
        guard let a = median(values), let b = median(base), b > 0 else { return nil }
        return a / b
    }

    /// The Markdown page of bench/results/.
    public func markdown() -> String {
        func number(_ value: Double?, _ digits: Int) -> String {
            value.map { StatsReport.fixed($0, digits: digits) } ?? "-"
        }
        func row(_ name: String, _ values: [Double]) -> String {
            let ratio = Self.ratio(values, detached)
            let extra = values == detached ? 0 : extraNanosecondsPerRoundTrip(values)
            return "| \(name) | \(number(Self.median(values), 0)) | \(number(values.min(), 0)) | \(number(values.max(), 0)) "
                + "| \(values.count) | \(number(ratio, 3)) | \(number(pairedRatio(values), 3)) | \(number(extra, 0)) |"
        }
        return """
            # BPF scheduler programs: overhead on a context-switch-heavy workload

            `vcpufreq bench bpf --round-trips \(roundTrips) --repetitions \(repetitions) --cpu \(cpu)` (\(build) build), \
            \(date), Linux \(kernel), \(onlineProcessors) online CPUs.

            Two threads pinned to CPU \(cpu) pass a byte over two pipes; each round trip is two context switches and \
            two wake-ups. The modes run interleaved, the order rotating every repetition; a paired ratio \
            divides a mode's run by the detached run of the same repetition.

            | mode | median round trips/s | min | max | runs | ratio of medians | median paired ratio | extra ns per round trip |
            |---|---|---|---|---|---|---|---|
            \(row("detached", detached))
            \(row("attached, threads untracked", attachedUntracked))
            \(row("attached, threads tracked", attachedTracked))

            Ratio with / without the programs (tracked threads, median of the per-repetition ratios): \
            **\(number(pairedRatio(attachedTracked), 3))**; threads the programs do not track: \
            \(number(pairedRatio(attachedUntracked), 3)). Ratio of the medians: \(number(trackedRatio, 3)) and \
            \(number(untrackedRatio, 3)).

            Monitor: \(monitor)

            """
    }
}
