/// The Markdown rendering of a run: the table bench/doorbell.md and the
/// README quote, the reads, the targets, the placements side by side and
/// the findings.
public enum Report {
    /// A number as the tables print it: three significant digits below 10,
    /// fewer decimals above (latencies of µs and costs of ns share columns).
    public static func number(_ value: Double) -> String {
        guard value.isFinite else { return "—" }
        let magnitude = abs(value)
        if magnitude >= 100 { return String(Int(value.rounded())) }
        if magnitude >= 10 { return fixed(value, 1) }
        if magnitude >= 1 { return fixed(value, 2) }
        if magnitude == 0 { return "0" }
        // Below 1: three significant digits.
        var decimals = 3
        var scaled = magnitude
        while scaled < 0.1, decimals < 9 {
            scaled *= 10
            decimals += 1
        }
        return fixed(value, decimals)
    }

    /// `value` with exactly `decimals` decimals (no Foundation formatting).
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        let whole = Int(scaled / scale)
        let fraction = Int(scaled - Double(whole) * scale)
        let sign = value < 0 && scaled > 0 ? "-" : ""
        guard decimals > 0 else { return sign + String(whole) }
        let digits = String(fraction)
        return sign + String(whole) + "." + String(repeating: "0", count: max(0, decimals - digits.count)) + digits
    }

    static func ratio(_ value: Double?) -> String { value.map { number($0) } ?? "—" }

    /// The requests table: every path in every placement.
    public static func requestTable(_ results: DoorbellResults) -> String {
        var lines = [
            "| placement | # | path | vCPU cost / request (µs) | × path 1 | exits / request | kicks / request "
                + "| applied p50 (µs) | p90 (µs) | p99 (µs) | p99 × path 1 | not applied |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for placement in results.placements {
            for request in placement.requests {
                let latency = request.latency
                lines.append(
                    "| \(placement.placement.rawValue) | \(request.path.rawValue) | \(request.title) "
                        + "| \(number(request.costMicroseconds)) | \(ratio(request.costRatioToPath1)) "
                        + "| \(number(request.exitsPerRequest)) | \(number(request.kicksPerRequest)) "
                        + "| \(latency.map { number($0.p50) } ?? "—") | \(latency.map { number($0.p90) } ?? "—") "
                        + "| \(latency.map { number($0.p99) } ?? "—") | \(ratio(request.latencyRatioToPath1?.p99)) "
                        + "| \(request.abandoned) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// cur_perf reads: cost per placement, exits, ratio to the in-VMM MMIO read.
    public static func readTable(_ results: DoorbellResults) -> String {
        let placements = results.placements
        var lines = [
            "| read | exits / read | " + placements.map { "\($0.placement.rawValue) (µs)" }.joined(separator: " | ")
                + " | × MMIO in VMM |",
            "|---|---:|" + placements.map { _ in "---:|" }.joined() + "---:|",
        ]
        for kind in ReadPathKind.allCases {
            guard let first = placements.first?.read(kind) else { continue }
            let costs = placements.map { $0.read(kind).map { number($0.costMicroseconds) } ?? "—" }
            lines.append("| \(kind.title) | \(number(first.exitsPerRead)) | " + costs.joined(separator: " | ")
                + " | \(ratio(first.ratioToMMIOInVMM)) |")
        }
        return lines.joined(separator: "\n")
    }

    /// The targets as a matrix: one row per target, one column per placement.
    public static func targetMatrix(_ results: DoorbellResults) -> String {
        let placements = results.placements.map(\.placement)
        var targets: [String] = []
        for verdict in results.targets where !targets.contains(verdict.target) { targets.append(verdict.target) }
        var lines = [
            "| target | " + placements.map(\.rawValue).joined(separator: " | ") + " |",
            "|---|" + placements.map { _ in "---|" }.joined(),
        ]
        for target in targets {
            let cells = placements.map { placement -> String in
                guard let verdict = results.targets.first(where: { $0.target == target && $0.placement == placement }) else {
                    return "—"
                }
                return "\(verdict.met ? "met" : "**missed**") (\(number(verdict.value)))"
            }
            lines.append("| \(target) | " + cells.joined(separator: " | ") + " |")
        }
        return lines.joined(separator: "\n")
    }

    public static func targetTable(_ results: DoorbellResults) -> String {
        var lines = ["| target | placement | measured | limit | met |", "|---|---|---:|---:|---|"]
        for verdict in results.targets {
            lines.append("| \(verdict.target) | \(verdict.placement.rawValue) | \(number(verdict.value)) \(verdict.unit) "
                + "| \(number(verdict.limit)) \(verdict.unit) | \(verdict.met ? "yes" : "**no**") |")
        }
        return lines.joined(separator: "\n")
    }

    /// Where the time goes, per placement and daemon path: the kernel's
    /// accounting of the timed requests beside the bare costs (a doorbell
    /// store nobody waits on, an eventfd wake-up without KVM).
    public static func placementTable(_ results: DoorbellResults) -> String {
        var lines = [
            "| placement | path | applied p50 / p99 (µs) | p99 of A / of B (µs) | vCPU cost per request, daemon asleep, p50 (µs) "
                + "| daemon CPU (µs) | daemon waiting for a CPU (µs) | daemon wake-ups | vCPU preempted (µs) | other load | steal |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for placement in results.placements {
            var rows = placement.requests.filter { $0.path != .inVMM }
            if let variant = placement.kickWithoutSyscall, let index = rows.firstIndex(where: { $0.path == .kicked }) {
                rows.insert(variant, at: index + 1)
            }
            for request in rows {
                let label = request.name == RequestPathKind.kickedWithoutSyscallName ? "3′ (no slice change)" : "\(request.path.rawValue)"
                let latency = request.latency.map { "\(number($0.p50)) / \(number($0.p99))" } ?? "—"
                let spaced = request.spacedRequestCost.map { number($0.p50) } ?? "—"
                let a = request.accounting
                func percent(_ value: Double?) -> String { value.map { "\(Int(($0 * 100).rounded())) %" } ?? "—" }
                let split = request.latencyOfA.flatMap { a in request.latencyOfB.map { "\(number(a.p99)) / \(number($0.p99))" } } ?? "—"
                lines.append("| \(placement.placement.rawValue) | \(label) | \(latency) | \(split) | \(spaced) "
                    + "| \(a.map { number($0.daemonCPUMicrosecondsPerRequest) } ?? "—") "
                    + "| \(a.map { number($0.daemonRunQueueMicrosecondsPerRequest) } ?? "—") "
                    + "| \(request.daemon?.wakeupsPerRequest.map { number($0) } ?? "—") "
                    + "| \(a.map { number($0.vcpuRunQueueMicrosecondsPerRequest) } ?? "—") "
                    + "| \(percent(a?.otherLoadShare)) | \(percent(a?.stealShare)) |")
            }
        }
        lines.append("")
        lines.append("| placement | vCPU CPUs | daemon CPUs | doorbell store, nobody waiting (µs) "
            + "| port doorbell, nobody waiting (µs) | kick back to back (µs) | eventfd wake-up without KVM, p50 / p99 (µs) |")
        lines.append("|---|---|---|---:|---:|---:|---:|")
        for placement in results.placements {
            let wakeup = placement.wakeup.map { "\(number($0.p50)) / \(number($0.p99))" } ?? "—"
            lines.append("| \(placement.placement.rawValue) | \(placement.vcpuCPUs) | \(placement.daemonCPUs) "
                + "| \(placement.idleKickMicroseconds.map { number($0) } ?? "—") "
                + "| \(placement.idlePortKickMicroseconds.map { number($0) } ?? "—") "
                + "| \(placement.request(.kicked).map { number($0.costMicroseconds) } ?? "—") | \(wakeup) |")
        }
        return lines.joined(separator: "\n")
    }

    /// The whole Markdown document of a run (results/doorbell.md).
    public static func markdown(_ results: DoorbellResults, chartFile: String? = "doorbell.svg") -> String {
        var text = "# Doorbell benchmark\n\n"
        text += "Run \(results.date) on \(results.machine.summary); load average \(results.loadAverageBefore) before, "
            + "\(results.loadAverageAfter) after (the machine is shared: its other work shows in the tails)"
        text += results.settings.quick ? " — **quick mode** (few samples: structure, not numbers).\n\n" : ".\n\n"
        text += "Daemon actuators: \(results.daemonActuators). Requests alternate set_perf / perf "
            + "\(results.settings.requestAKHz) and \(results.settings.requestBKHz) kHz (util_min "
            + "\(results.settings.expectedUtilMinA) / \(results.settings.expectedUtilMinB)); "
            + "\(results.settings.latencySamples) timed requests per path and placement, spaced by "
            + "\(number(results.settings.meanGapMicroseconds)) µs of guest work on average; "
            + "path 4 polls every \(results.settings.pollIntervalMicroseconds) µs; path 5 publishes utilizations "
            + "\(results.settings.expectedUtilMinA) / \(results.settings.expectedUtilMinB) (its daemon polls once a second). Guest TSC "
            + "\(number(results.calibration.tsc.ticksPerMicrosecond)) ticks/µs; time stamps add "
            + "\(number(results.calibration.timestampOverheadNanoseconds)) ns per timed request.\n\n"
        text += "## Requests\n\n" + requestTable(results) + "\n\n"
        text += "vCPU cost: back to back, not waiting ((run of N − empty run) / N, median of "
            + "\(results.settings.costRounds) rounds). Applied: request → hint applied, timed in the guest "
            + "(path 1: the exit returned, the VMM applied it; paths 2-4: the daemon's host area shows the "
            + "request's util_min; path 5: the slot's `sched_seen`, which only the host's BPF programs write, shows "
            + "the request's utilization — a host BPF program has seen it). Exits: the VMM's exit counters. "
            + "× path 1: the same placement's path 1.\n\n"
        text += "## cur_perf reads\n\n" + readTable(results) + "\n\n"
        text += "## Targets\n\n" + targetMatrix(results) + "\n\n"
        text += "## Where the time goes\n\n" + placementTable(results) + "\n\n"
        text += "Per timed request: the daemon's CPU time, its time runnable but waiting for a CPU and its loop's "
            + "wake-ups (STATUS `daemon.wakeups`, for any reason), the vCPU "
            + "thread's time runnable but off its CPU (/proc/…/schedstat); other load: the share of all CPUs "
            + "busy with processes other than the benchmark and its daemon; steal: taken by this machine's own "
            + "hypervisor (/proc/stat).\n\n"
        for line in results.findings { text += "- \(line)\n" }
        if let chartFile {
            text += "\n![request → applied latency, CDF per path and placement](\(chartFile))\n"
        }
        return text
    }
}

extension Report {
    /// The README's section: machine, one compact table (every path, cost and
    /// exits from the first placement, latencies in every placement), the
    /// reads and the targets in one line each.
    public static func readmeSection(_ results: DoorbellResults) -> String {
        let placements = results.placements
        guard let first = placements.first else { return "" }
        var text = "Latest `vcpufreq bench doorbell` run (\(results.date)\(results.settings.quick ? ", quick mode" : "")) on "
            + "\(results.machine.summary); daemon actuators: \(results.daemonActuators). "
            + "Cost: vCPU time per request back to back (placement \(first.placement.rawValue)); "
            + "applied: request → hint applied, p50 / p99 µs, per placement "
            + "(details, method and analysis: [bench/doorbell.md](bench/doorbell.md)).\n\n"
        text += "| path | vCPU cost (µs) | × path 1 | exits / request | "
            + placements.map { "applied, \($0.placement.rawValue)" }.joined(separator: " | ") + " |\n"
        text += "|---|---:|---:|---:|" + placements.map { _ in "---:|" }.joined() + "\n"
        for request in first.requests {
            let latencies = placements.map { placement -> String in
                guard let latency = placement.request(request.path)?.latency else { return "—" }
                return "\(number(latency.p50)) / \(number(latency.p99))"
            }
            text += "| \(request.path.rawValue). \(request.title) | \(number(request.costMicroseconds)) "
                + "| \(ratio(request.costRatioToPath1)) | \(number(request.exitsPerRequest)) | "
                + latencies.joined(separator: " | ") + " |\n"
        }
        for read in first.reads {
            text += "| \(read.title) | \(number(read.costMicroseconds)) | \(ratio(read.ratioToMMIOInVMM)) (× MMIO read) "
                + "| \(number(read.exitsPerRead)) | " + placements.map { _ in "" }.joined(separator: " | ") + " |\n"
        }
        text += "\n" + targetMatrix(results) + "\n"
        return text
    }

    public static let readmeBegin = "<!-- doorbell-bench:begin -->"
    public static let readmeEnd = "<!-- doorbell-bench:end -->"

    /// `readme` with the text between the markers replaced by `section`;
    /// nil when the markers are missing.
    public static func replacingReadmeSection(in readme: String, with section: String) -> String? {
        guard let begin = readme.range(of: readmeBegin), let end = readme.range(of: readmeEnd),
            begin.upperBound <= end.lowerBound
        else { return nil }
        return String(readme[..<begin.upperBound]) + "\n" + section + String(readme[end.lowerBound...])
    }
}
