import ArgumentParser
import Foundation
import VCPUFreqDoorbellBench
import VCPUFreqKVM

/// `vcpufreq bench doorbell`: the request paths and read paths side by side
/// on real KVM (bench/doorbell.md).
struct BenchDoorbell: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doorbell",
        abstract: "Measure the four request paths and the cur_perf reads side by side on real KVM.",
        discussion: """
            In one run: (1) an MMIO exit handled in the VMM thread with sched_setattr on itself, (2) an MMIO exit \
            forwarded to the daemon, (3) the shared page with an ioeventfd kick, (4) the shared page with kicks \
            suppressed; cur_perf through an MMIO exit and from the read-only mirror. Starts its own daemon, places \
            the threads unpinned, split across two CPUs and on one CPU, and reports per path the vCPU cost per \
            request, request → hint applied latency (p50/p99), exits per request and ratios against path 1. \
            Writes doorbell.md, doorbell.json and doorbell.svg into --out; progress goes to stderr. \
            Exits with status 69 when this machine has no usable KVM.
            """
    )

    @Flag(help: "Few samples: every path and placement in a few seconds (structure, not publishable numbers).")
    var quick = false

    @Option(help: "Directory for doorbell.md, doorbell.json and doorbell.svg.")
    var out = "bench/results"

    @Option(name: .customLong("placement"), help: "Only this placement (repeatable): unpinned, split, shared.")
    var placements: [Placement] = []

    @Option(help: "Timed requests per path and placement (default: 2100, quick 100).")
    var samples: Int?

    @Option(name: .customLong("poll-interval-us"), help: "Path 4: the daemon polls the slot this often (µs).")
    var pollIntervalMicroseconds: Int?

    @Option(name: .customLong("daemon-args"), help: "Extra `serve` options for the daemon, space-separated (e.g. \"--busy-poll-us 300\").")
    var daemonArguments: String?

    @Option(help: "Also replace the benchmark section of this README (between its doorbell-bench markers).")
    var readme: String?

    @Option(name: .customLong("kvm-device"), help: "The KVM device.")
    var kvmDevice = KVMSystem.defaultDevicePath.string

    @Option(name: .customLong("from"), help: "Measure nothing: render this doorbell.json again (into --out, --readme).")
    var from: String?

    func validate() throws {
        if let samples, !(2...1_000_000).contains(samples) { throw ValidationError("--samples must be 2...1000000") }
        if let pollIntervalMicroseconds, !(100...1_000_000).contains(pollIntervalMicroseconds) {
            throw ValidationError("--poll-interval-us must be 100...1000000")
        }
    }

    func run() throws {
        var configuration = quick ? BenchConfiguration.quick : BenchConfiguration.full
        if let samples { configuration.latencySamples = samples }
        if let pollIntervalMicroseconds { configuration.pollIntervalMicroseconds = pollIntervalMicroseconds }
        if let daemonArguments { configuration.daemonArguments = daemonArguments.split(separator: " ").map(String.init) }
        let bench = DoorbellBench(
            configuration: configuration, daemonExecutable: VMM.ownExecutable(),
            placements: placements.isEmpty ? Placement.allCases : placements, progress: .standardError(name: "doorbell"),
            kvmDevice: kvmDevice)
        var results: DoorbellResults
        do throws(BenchError) {
            if let from {
                // Render again with the current analysis: the findings are derived from the data.
                results = try ResultsWriter.read(from)
                results.findings = Findings.explain(results)
            } else {
                results = try bench.run()
            }
        } catch {
            printError("vcpufreq bench doorbell: \(error)")
            throw ExitCode(error.isKVMUnavailable ? VMM.kvmUnavailableStatus : 1)
        }
        let written = try ResultsWriter.write(results, to: out)
        print(Report.requestTable(results) + "\n\n" + Report.readTable(results) + "\n\n" + Report.targetTable(results))
        print("\nwritten: " + written.joined(separator: ", "))
        if let readme {
            guard let text = try? String(contentsOfFile: readme, encoding: .utf8),
                let updated = Report.replacingReadmeSection(in: text, with: Report.readmeSection(results))
            else {
                throw CLIError("\(readme) has no \(Report.readmeBegin) … \(Report.readmeEnd) section to replace")
            }
            try updated.write(toFile: readme, atomically: true, encoding: .utf8)
            print("updated: \(readme)")
        }
    }
}

extension Placement: ExpressibleByArgument {}
