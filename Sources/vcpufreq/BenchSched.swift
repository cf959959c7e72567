import ArgumentParser
import Foundation
import VCPUFreqBench

/// `vcpufreq bench sched`: the sched_ext scheduler against EEVDF and EEVDF
/// with the slice hint (bench/sched.md). Needs a sched_ext kernel (Debian's
/// 7.3 under QEMU here).
struct BenchSched: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sched",
        abstract: "Compare the sched_ext scheduler with EEVDF and EEVDF + slice: wake-up delay, placement, ping-pong cost.",
        discussion: """
            Runs a latency-flagged vCPU thread against CPU hogs on every CPU in three modes (no hint; the daemon's \
            EEVDF slice; the daemon with --scheduler sched-ext), a placement run, and a context-switch ping-pong with \
            and without the scheduler, and writes sched.md and sched.json to --output. Needs root and a kernel with \
            sched_ext; it disturbs every task (run it in a test VM). See bench/sched.md.
            """
    )

    @Flag(help: "A short run (smoke test): one round of 1 s per mode, a short ping-pong.")
    var quick = false

    @Option(help: "Directory for sched.md and sched.json.")
    var output = "bench/results"

    @Option(help: "Rounds of the three latency modes.")
    var rounds: Int?

    @Option(help: "Seconds per latency run.")
    var seconds: Double?

    @Option(name: .customLong("hogs-per-cpu"), help: "CPU hogs pinned to each CPU.")
    var hogsPerCPU = 2

    func validate() throws {
        if let rounds, !(1...100).contains(rounds) { throw ValidationError("--rounds must be within 1...100") }
        if let seconds, !(0.2...600).contains(seconds) { throw ValidationError("--seconds must be within 0.2...600") }
        guard (1...16).contains(hogsPerCPU) else { throw ValidationError("--hogs-per-cpu must be within 1...16") }
    }

    func run() throws {
        var options = SchedBenchmark.Options(
            executable: try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"), quick: quick)
        if let rounds { options.rounds = rounds }
        if let seconds { options.seconds = seconds }
        options.hogsPerCPU = hogsPerCPU
        #if DEBUG
            let build = "debug"
        #else
            let build = "release"
        #endif
        let report: SchedBenchmark.Report
        do {
            report = try SchedBenchmark.run(options, build: build) { printError($0) }
        } catch let error as BenchError {
            throw CLIError(error.description)
        }
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        let markdown = report.markdown()
        do {
            try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
            try Data(markdown.utf8).write(to: URL(fileURLWithPath: output + "/sched.md"))
            try encoder.encode(report).write(to: URL(fileURLWithPath: output + "/sched.json"))
        } catch {
            throw CLIError("cannot write the results to \(output): \(error)")
        }
        print(markdown, terminator: "")
        print("written: \(output)/sched.md, \(output)/sched.json")
    }
}
