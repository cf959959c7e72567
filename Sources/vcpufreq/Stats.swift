import ArgumentParser
import Foundation
import VCPUFreqBPF
import VCPUFreqClient
import VCPUFreqProtocol

struct Stats: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Per VM and vCPU: what the host scheduler did with the vCPU thread, beside the requested and applied hints.",
        discussion: """
            Host truth comes from the daemon's BPF programs (docs/bpf.md): time on CPU as a share of the interval, \
            run delay (runnable to running) p50/p99 and mean, involuntary switches (preemptions) per second, \
            migrations, and KVM exits per second by kind. Rates need two samples: the command takes one, waits \
            --interval-ms, takes another and prints the difference; --watch keeps printing one report per interval.
            """
    )

    /// Longest interval accepted: an hour (the counters are exact over any
    /// span; beyond that the command would look hung).
    static let maximumIntervalMilliseconds = 3_600_000

    @Option(help: "Path of the daemon's socket.")
    var socket: String

    @Flag(help: "Print JSON (one document per interval with --watch).")
    var json = false

    @Flag(help: "Keep printing a report every interval until interrupted.")
    var watch = false

    @Option(name: .customLong("interval-ms"), help: "Time between the two samples of a report, ms.")
    var intervalMilliseconds = 1000

    func validate() throws {
        guard (1...Self.maximumIntervalMilliseconds).contains(intervalMilliseconds) else {
            throw ValidationError("--interval-ms must be within 1...\(Self.maximumIntervalMilliseconds)")
        }
    }

    func run() throws {
        do {
            let client = try VCPUFreqClient(socketPath: socket, clientName: "vcpufreq stats")
            var earlier = try client.status()
            repeat {
                Thread.sleep(forTimeInterval: Double(intervalMilliseconds) / 1000)
                let later = try client.status()
                let text = try Self.format(StatsReport(earlier: earlier, later: later), json: json)
                // Unbuffered: with --watch into a pipe, each report as it is made.
                FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
                earlier = later
            } while watch
        } catch let error as ClientError {
            throw CLIError("\(socket): \(error)")
        }
    }

    static func format(_ report: StatsReport, json: Bool) throws -> String {
        guard json else { return report.render() }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(report), as: UTF8.self)
    }
}
