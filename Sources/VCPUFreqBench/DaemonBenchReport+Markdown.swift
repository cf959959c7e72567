import Foundation
import VCPUFreqBenchSupport

extension DaemonBenchReport {
    /// The report as Markdown: header, the main table (rows: VMs × vCPUs ×
    /// path; columns: requests/s, latency, allocations, daemon cost, ratios
    /// against path 1), idle costs, the placement study and notes.
    public var markdown: String {
        var out: [String] = []
        out.append("# vcpufreq daemon benchmark")
        out.append("")
        out.append("`\(command)` — \(date), \(build) build\(quick ? ", **quick run** (smoke test sizes)" : "").")
        out.append("")
        out.append(
            "- Machine: \(machine.summaryWithCPUList); load average \(loadAverageBefore.map { Self.number($0, 2) }.joined(separator: " ")) before, "
                + "\(loadAverageAfter.map { Self.number($0, 2) }.joined(separator: " ")) after")
        out.append("- Daemon actuators: `\(daemon.actuators)`; allocations: \(daemon.allocationCounting)")
        if let slice = daemon.observedSliceNanoseconds {
            out.append("- A latency-sensitive request left `se.slice = \(slice)` ns on its vCPU thread (/proc/<tid>/sched): the slice syscall is real.")
        }
        out.append(
            "- Latency: \(settings.latencySamples) requests one at a time, the generator busy for a random \(settings.latencyGapMicroseconds / 2)–\(settings.latencyGapMicroseconds * 3 / 2) µs between them (the daemon asleep before each), "
                + "from just before the request until the slot's host area shows the new clamp (and slice). "
                + "Every shape runs its paths in turn \(settings.rounds) time(s) over (interleaved); a row adds its rounds up. "
                + "Throughput: closed loop, every vCPU one request outstanding, \(Self.number(settings.throughputSeconds, 2)) s in all, each round after "
                + "\(Self.number(settings.warmupSeconds, 2)) s warm-up; its latency (\"loaded\") includes queueing. "
                + "Path 3 polls every \(settings.pollIntervalMicroseconds) µs. Requests alternate util \(settings.lowUtilization)/\(settings.highUtilization); "
                + "`util+latency` also toggles the latency flag (EEVDF slice \(settings.latencySliceMicroseconds) µs: a sched_setattr per request).")
        out.append("")
        out.append(
            "| VMs | vCPUs (total) | path | request | req/s | p50 µs | p99 µs | loaded p50 µs | loaded p99 µs | allocs/req | daemon CPU µs/req | daemon wake-ups/req | req/s ÷ path 1 | p50 ÷ path 1 | p99 ÷ path 1 | CPU/req ÷ path 1 |")
        out.append("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for row in rows {
            let cells = [
                "\(row.vms)", "\(row.vms * row.vcpusPerVM)", row.path.title, row.variant.title,
                Self.number(row.requestsPerSecond, 0), Self.number(row.latency.p50Microseconds, 1),
                Self.number(row.latency.p99Microseconds, 1), Self.optional(row.loadedLatency?.p50Microseconds, 1),
                Self.optional(row.loadedLatency?.p99Microseconds, 1), Self.optional(row.allocationsPerRequest, 3),
                Self.optional(row.daemonCPUMicrosecondsPerRequest, 2), Self.optional(row.daemonWakeupsPerRequest, 2),
                Self.optional(row.ratios?.requestsPerSecond, 2), Self.optional(row.ratios?.p50, 2),
                Self.optional(row.ratios?.p99, 2), Self.optional(row.ratios?.daemonCPUPerRequest, 2),
            ]
            out.append("| " + cells.joined(separator: " | ") + " |")
        }
        out.append("")
        out.append("Idle daemon (every VM attached, no requests):")
        out.append("")
        out.append("| VMs | vCPUs | attach s | daemon CPU % with kicks | wake-ups/s with kicks | daemon CPU % polling | wake-ups/s polling |")
        out.append("|---:|---:|---:|---:|---:|---:|---:|")
        for shape in shapes {
            let cells = [
                "\(shape.vms)", "\(shape.vms * shape.vcpusPerVM)", Self.number(shape.attachSeconds, 3),
                Self.optional(shape.idleDaemonCPUPercentKicked, 2), Self.optional(shape.idleDaemonWakeupsPerSecondKicked, 0),
                Self.optional(shape.idleDaemonCPUPercentPolled, 2), Self.optional(shape.idleDaemonWakeupsPerSecondPolled, 0),
            ]
            out.append("| " + cells.joined(separator: " | ") + " |")
        }
        if !placement.isEmpty {
            out.append("")
            out.append("Placement (1 VM × 1 vCPU, util only; the generator plays the guest, \(settings.latencySamples / 2) requests per row):")
            out.append("")
            out.append("| placement | path | p50 µs | p90 µs | p99 µs | max µs | daemon CPU µs/req |")
            out.append("|---|---|---:|---:|---:|---:|---:|")
            for row in placement {
                out.append(
                    "| \(row.placement.title) | \(row.path.title) | \(Self.number(row.latency.p50Microseconds, 1)) | "
                        + "\(Self.number(row.latency.p90Microseconds, 1)) | \(Self.number(row.latency.p99Microseconds, 1)) | "
                        + "\(Self.number(row.latency.maxMicroseconds, 1)) | \(Self.optional(row.daemonCPUMicrosecondsPerRequest, 2)) |")
            }
        }
        if let recorded = daemon.windowAllocationsRecorded {
            out.append("")
            if recorded == 0 {
                out.append("Allocations inside the measurement windows: none.")
            } else {
                out.append("Allocations inside the measurement windows: \(recorded); call sites (innermost first, most frequent first):")
                out.append("")
                out += Self.siteLines(daemon.allocationSites)
            }
            if !daemon.firstUseAllocationSites.isEmpty {
                out.append("")
                out.append(
                    "First-use allocations (during warm-ups, not per request; `warmupAllocations` in the JSON counts them; "
                        + "below, how often each call site appears among the \(daemon.firstUseAllocationSites.reduce(0) { $0 + $1.count }) stacks kept):")
                out.append("")
                out += Self.siteLines(daemon.firstUseAllocationSites)
            }
        }
        out += Self.notesSection(notes, daemonWarnings: daemon.warnings)
        return out.joined(separator: "\n") + "\n"
    }

    /// The "Notes:" list of a report: its notes, then up to ten daemon log
    /// warnings; nothing when there are none.
    static func notesSection(_ notes: [String], daemonWarnings: [String]) -> [String] {
        let all = notes + daemonWarnings.prefix(10).map { "daemon log: \($0)" }
        return all.isEmpty ? [] : ["", "Notes:", ""] + all.map { "- \($0)" }
    }

    /// The report as pretty JSON (keys as the Swift names: a snake_case
    /// conversion would not survive the round trip of names like `daemonCPU…`).
    public func json() throws -> Data { try ResultsFiles.encode(self) }

    /// Reads a report written by `json()`.
    public static func decode(_ data: Data) throws -> DaemonBenchReport {
        let decoder = JSONDecoder()
        return try decoder.decode(DaemonBenchReport.self, from: data)
    }

    /// A site per line: count, then the first frames past the allocator.
    static func siteLines(_ sites: [AllocationSite]) -> [String] {
        let allocator: Set<String> = ["malloc", "calloc", "realloc", "swift_slowAlloc", "swift_allocObject", "swift_allocBox"]
        return sites.prefix(8).map { site in
            let frames = site.frames.drop { allocator.contains($0) }.prefix(4)
            return "- \(site.count)× " + frames.map { "`\($0)`" }.joined(separator: " ← ")
        }
    }

    static func number(_ value: Double, _ digits: Int) -> String { NumberFormat.decimals(value, digits) }

    static func optional(_ value: Double?, _ digits: Int) -> String { NumberFormat.decimals(value, digits) }
}
