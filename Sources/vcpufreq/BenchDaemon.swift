import ArgumentParser
import Foundation
import VCPUFreqBench
import VCPUFreqBenchSupport

struct BenchDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Benchmark the daemon alone: requests/s, kick → hint applied latency, allocations per request.",
        discussion: """
            Starts `vcpufreq serve` (this binary) as a child process with a generated topology and acts as 1, 8 and \
            64 VMMs: idle threads stand in for vCPU threads, each VM has its own connection and shared page with \
            doorbells. Three request paths are measured side by side: (1) util_hint register WRITE over the socket, \
            (2) shared page + doorbell kick, (3) shared page with kicks suppressed (the daemon polls). The daemon's \
            allocations are counted by LD_PRELOADing libVCPUFreqMallocCounter.so (built beside the binary). Writes \
            daemon.md and daemon.json to --out; progress goes to stderr. Build with `swift build -c release` first.
            """
    )

    @Flag(help: "A short run with tiny VMs (seconds; used by the smoke test).")
    var quick = false

    @Option(help: "Directory for daemon.md and daemon.json.")
    var out = "bench/results"

    @Option(help: "VM shapes as VMSxVCPUS, comma-separated (default: 1x8,1x1024,8x8,8x128,64x2,64x16).")
    var shapes: String?

    @Option(name: .customLong("latency-samples"), help: "Requests measured one at a time per path (split between the rounds).")
    var latencySamples: Int?

    @Option(help: "Closed-loop throughput window per path, seconds (split between the rounds).")
    var seconds: Double?

    @Option(help: "Times each shape's paths run in turn; a row adds its rounds up (default 3, --quick 1).")
    var rounds: Int?

    @Option(name: .customLong("poll-interval-us"), help: "poll_interval_us of the polled path.")
    var pollIntervalMicroseconds: Int?

    @Flag(name: .customLong("no-placement"), help: "Skip the same-CPU / cross-CPU placement study.")
    var noPlacement = false

    @Option(name: .customLong("daemon"), help: "The vcpufreq binary to run as the daemon (default: this one).")
    var daemonExecutable: String?

    @Option(name: .customLong("daemon-args"), help: "Extra `serve` options for the daemon, space-separated (e.g. \"--busy-poll-us 300\").")
    var daemonArguments: String?

    @Option(name: .customLong("malloc-counter"), help: "Path of libVCPUFreqMallocCounter.so (default: beside the binary).")
    var mallocCounter: String?

    func options() throws -> DaemonBenchOptions {
        let executable = try daemonExecutable ?? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var options = DaemonBenchOptions(
            quick: quick, daemonExecutable: executable,
            mallocCounterLibrary: mallocCounter ?? MallocCounterFile.libraryBesideExecutable())
        if let shapes {
            options.shapes = try shapes.split(separator: ",").map { text in
                guard let shape = VMShape(parsing: text) else { throw ValidationError("--shapes: \"\(text)\" is not VMSxVCPUS") }
                return shape
            }
        }
        if let latencySamples { options.latencySamples = latencySamples }
        if let seconds { options.throughputSeconds = seconds }
        if let rounds { options.rounds = rounds }
        if let pollIntervalMicroseconds { options.pollIntervalMicroseconds = pollIntervalMicroseconds }
        if noPlacement { options.placementStudy = false }
        if let daemonArguments { options.daemonArguments = daemonArguments.split(separator: " ").map(String.init) }
        return options
    }

    func validate() throws {
        if let problem = try options().problem() { throw ValidationError(problem) }
    }

    func run() throws {
        let benchmark = DaemonBenchmark(options: try options(), progress: .standardError(name: nil))
        let command = (["vcpufreq"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        let report: DaemonBenchReport
        do { report = try benchmark.run(command: command) } catch let error as BenchError {
            throw CLIError(error.description)
        }
        try ResultsFiles.write(ResultsFiles.Run(baseName: "daemon", json: report.json(), markdown: report.markdown), to: out)
        print(report.markdown, terminator: "")
        FileHandle.standardError.write(Data("wrote \(out)/daemon.md and \(out)/daemon.json\n".utf8))
    }
}
