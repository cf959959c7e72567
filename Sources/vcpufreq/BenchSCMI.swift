import ArgumentParser
import Foundation
import VCPUFreqBench

struct BenchSCMI: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "scmi",
        abstract: "Benchmark the SCMI device (vhost-user): cost per message and messages/s beside the register path.",
        discussion: """
            Starts `vcpufreq serve --vhost-user-scmi` (this binary) and, in one run, drives one VM on path 1 of \
            `bench daemon` (util_hint WRITE over the socket) and one VM over vhost-user as QEMU and a guest would: \
            PERFORMANCE_LEVEL_SET one per kick, eight per kick, and LEVEL_GET. Allocations are counted by \
            LD_PRELOADing libVCPUFreqMallocCounter.so. Writes scmi.md and scmi.json to --out; progress goes to \
            stderr. Build with `swift build -c release` first.
            """
    )

    @Flag(help: "A short run (seconds; used by the smoke test).")
    var quick = false

    @Option(help: "Directory for scmi.md and scmi.json.")
    var out = "bench/results"

    @Option(help: "vCPUs (and SCMI performance domains) of each VM.")
    var vcpus = 8

    @Option(name: .customLong("latency-samples"), help: "Requests measured one at a time per row (split between the rounds).")
    var latencySamples: Int?

    @Option(help: "Closed-loop throughput window per row, seconds (split between the rounds).")
    var seconds: Double?

    @Option(help: "Times the rows run in turn (default 3, --quick 1).")
    var rounds: Int?

    @Option(name: .customLong("daemon"), help: "The vcpufreq binary to run as the daemon (default: this one).")
    var daemonExecutable: String?

    @Option(name: .customLong("malloc-counter"), help: "Path of libVCPUFreqMallocCounter.so (default: beside the binary).")
    var mallocCounter: String?

    func options() throws -> SCMIBenchmark.Options {
        let executable = try daemonExecutable ?? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")
        var options = SCMIBenchmark.Options(
            quick: quick, daemonExecutable: executable, mallocCounterLibrary: mallocCounter ?? MallocCounterFile.libraryBesideExecutable())
        options.vcpus = vcpus
        if let latencySamples { options.latencySamples = latencySamples }
        if let seconds { options.throughputSeconds = seconds }
        if let rounds { options.rounds = rounds }
        return options
    }

    func validate() throws {
        if let problem = try options().problem() { throw ValidationError(problem) }
    }

    func run() throws {
        let benchmark = SCMIBenchmark(options: try options()) { line in FileHandle.standardError.write(Data((line + "\n").utf8)) }
        let command = (["vcpufreq"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        let report: SCMIBenchReport
        do { report = try benchmark.run(command: command) } catch let error as BenchError {
            throw CLIError(error.description)
        }
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try report.markdown.write(toFile: out + "/scmi.md", atomically: true, encoding: .utf8)
        try report.json().write(to: URL(fileURLWithPath: out + "/scmi.json"))
        print(report.markdown, terminator: "")
        FileHandle.standardError.write(Data("wrote \(out)/scmi.md and \(out)/scmi.json\n".utf8))
    }
}
