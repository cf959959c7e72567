import ArgumentParser
import Foundation
import VCPUFreqBenchSupport
import VCPUFreqKVM
import VCPUFreqWorkloadBench

/// `vcpufreq bench workload`: PCMark-style guest workloads on real KVM, one
/// table of Test Case | Baseline | configuration | %delta (bench/workload.md);
/// with `--command`, an external benchmark A/B-tested the same way.
struct BenchWorkload: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workload",
        abstract: "PCMark-style workloads per configuration on real KVM, or an external benchmark A/B (bench/workload.md).",
        discussion: """
            Guest mode (default): five tests (Web Browsing, Writing, Photo Editing, Video Editing, Data Manipulation) run \
            as real guest code on every vCPU of the reference VMM in each configuration — baseline, crosvm-style, \
            vcpufreq-mmio, vcpufreq-shared-page, vcpufreq-sched-ext (where the kernel has sched_ext), vcpufreq-bpf-map \
            (where the daemon offers BPF-map pages) — interleaved \
            round by round with the same seeds, under host contention; scores, %delta with a 95 % bootstrap interval, \
            score per CPU-second. Command mode (--command): runs CMD with `sh -c` once per configuration and round, \
            each configuration a set of daemon settings (--configurations 'NAME[:KEY=VALUE,...]', keys daemon=on|off, \
            clamp=LIST, latency=LIST, kick=adaptive|always|never, scheduler=NAME, args=SERVE-OPTIONS), reads the score \
            from its output with --score-regex, and reports the same table. Writes workload.md, workload.json and \
            workload.svg into --out; progress goes to stderr. Exits with status 69 when guest mode finds no usable KVM.
            """
    )

    @Flag(help: "Seconds, not minutes: two rounds of short programs, no contention (structure, not numbers to quote).")
    var quick = false

    @Option(help: "Directory for workload.md, workload.json and workload.svg.")
    var out = "bench/results"

    @Option(help: "Rounds, interleaved (default: 5; quick 2).")
    var rounds: Int?

    @Option(help: "Host contention: none, light (1 CPU hog per CPU) or heavy (4 per CPU). Default: heavy (quick: none).")
    var contention: Contention?

    @Option(parsing: .upToNextOption, help: "Guest mode: configurations to compare, comma-separated, the first is the baseline (default: all five). Command mode: one or more 'NAME[:KEY=VALUE,...]'.")
    var configurations: [String] = []

    @Option(help: "Guest mode: each test's program per vCPU, seconds (default 2; quick 0.05).")
    var seconds: Double?

    @Option(help: "Guest mode: vCPUs per VM (default: the host's CPUs, at most 4).")
    var vcpus: Int?

    @Option(help: "Base seed of the programs (the same seed gives the same programs).")
    var seed: UInt64?

    @Option(name: .customLong("daemon-args"), help: "Extra `serve` options for the daemon, space-separated.")
    var daemonArguments: String?

    @Option(help: "Command mode: the benchmark to run (with sh -c).")
    var command: String?

    @Option(name: .customLong("score-regex"), help: "Command mode: the score is the first group (else the match) of the last match in the command's stdout.")
    var scoreRegex: String?

    @Option(name: .customLong("name"), help: "Command mode: the test's name in the table.")
    var testName = "command"

    @Option(help: "Command mode: the daemon's topology file (default: a generated one with --vcpus vCPUs).")
    var topology: String?

    @Option(name: .customLong("timeout"), help: "Command mode: seconds one run of the command may take.")
    var timeoutSeconds: Double = 3600

    @Option(help: "Also replace the workload section of this README (between its workload-bench markers).")
    var readme: String?

    @Option(name: .customLong("kvm-device"), help: "The KVM device.")
    var kvmDevice = KVMSystem.defaultDevicePath.string

    @Option(name: .customLong("from"), help: "Measure nothing: render this workload.json again (into --out, --readme).")
    var from: String?

    func validate() throws {
        if let rounds, !(1...1000).contains(rounds) { throw ValidationError("--rounds must be 1...1000") }
        if let seconds, !(0.01...600).contains(seconds) { throw ValidationError("--seconds must be 0.01...600") }
        if let vcpus, !(1...8).contains(vcpus) { throw ValidationError("--vcpus must be 1...8") }
        if command != nil, scoreRegex == nil { throw ValidationError("--command needs --score-regex") }
        if command == nil, scoreRegex != nil { throw ValidationError("--score-regex is for --command") }
        if command == nil, topology != nil { throw ValidationError("--topology is for --command") }
        if timeoutSeconds <= 0 { throw ValidationError("--timeout must be positive") }
    }

    func run() throws {
        var results: WorkloadResults
        do throws(WorkloadBenchError) {
            if let from {
                results = try WorkloadResultsFiles.read(from)
            } else if let command, let scoreRegex {
                results = try commandBench(command: command, scoreRegex: scoreRegex).run()
            } else {
                results = try guestBench().run()
            }
        } catch {
            printError("vcpufreq bench workload: \(error)")
            throw ExitCode(error.isKVMUnavailable ? VMM.kvmUnavailableStatus : (error.isUsage ? 64 : 1))
        }
        let written: [String]
        do throws(WorkloadBenchError) {
            written = try WorkloadResultsFiles.write(results, to: out)
        } catch {
            throw CLIError("\(error)")
        }
        print(WorkloadReport.scoreTable(results))
        print("\nwritten: " + written.joined(separator: ", "))
        if let readme {
            do {
                try WorkloadReport.readme.update(file: readme, with: WorkloadReport.readmeSection(results))
            } catch {
                throw CLIError("\(error)")
            }
            print("updated: \(readme)")
        }
    }

    func guestBench() throws(WorkloadBenchError) -> WorkloadBench {
        var settings = quick ? WorkloadSettings.quick : WorkloadSettings.full
        if !configurations.isEmpty { settings.configurations = try WorkloadConfiguration.list(configurations.joined(separator: ",")) }
        if let rounds { settings.rounds = rounds }
        if let contention { settings.contention = contention }
        if let seconds { settings.secondsPerTest = seconds }
        if let vcpus { settings.vcpus = vcpus }
        if let seed { settings.seed = seed }
        if let daemonArguments { settings.daemonArguments = daemonArguments.split(separator: " ").map(String.init) }
        return WorkloadBench(
            settings: settings, daemonExecutable: VMM.ownExecutable(), progress: .standardError(name: "workload"),
            kvmDevice: kvmDevice)
    }

    func commandBench(command: String, scoreRegex: String) throws(WorkloadBenchError) -> CommandBench {
        var bench = try CommandBench(
            command: command, scoreRegex: scoreRegex,
            configurations: configurations.isEmpty ? CommandBench.defaultConfigurations : configurations,
            daemonExecutable: VMM.ownExecutable(), progress: .standardError(name: "workload"))
        bench.rounds = rounds ?? (quick ? 2 : 5)
        bench.contention = contention ?? .none
        bench.testName = testName
        bench.topology = topology
        bench.vcpus = vcpus ?? 2
        if let seed { bench.seed = seed }
        bench.timeout = .milliseconds(Int64(timeoutSeconds * 1000))
        if let daemonArguments { bench.daemonArguments = daemonArguments.split(separator: " ").map(String.init) }
        return bench
    }
}

extension Contention: ExpressibleByArgument {}
