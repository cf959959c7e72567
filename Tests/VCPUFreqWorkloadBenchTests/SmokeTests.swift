import Foundation
import Testing
import VCPUFreqBenchSupport
@testable import VCPUFreqWorkloadBench

let kvmAvailable = access("/dev/kvm", F_OK) == 0
let requiresKVM = Testing.ConditionTrait.enabled(if: kvmAvailable, "no /dev/kvm on this machine: the guest tests need KVM")

/// The `vcpufreq` built with the tests (beside the test bundle), else
/// .build/debug/vcpufreq; `VCPUFREQ_EXECUTABLE` overrides.
func builtExecutable(filePath: String = #filePath) -> String {
    if let path = ProcessInfo.processInfo.environment["VCPUFREQ_EXECUTABLE"] { return path }
    let beside = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
        .appendingPathComponent("vcpufreq").path
    if access(beside, X_OK) == 0 { return beside }
    var root = URL(fileURLWithPath: filePath)
    for _ in 0..<3 { root.deleteLastPathComponent() }
    return root.appendingPathComponent(".build/debug/vcpufreq").path
}

/// One quick guest run against a real daemon: the structure, and that the
/// numbers agree with each other and with what the kernel and the daemon
/// counted. No time and no delta is asserted: the machine is shared, and
/// the numbers are the benchmark's to report.
@Suite(requiresKVM, .serialized) struct SmokeTests {
    static let run: Result<WorkloadResults, WorkloadBenchError> = {
        do throws(WorkloadBenchError) {
            return .success(try WorkloadBench(settings: .quick, daemonExecutable: builtExecutable()).run())
        } catch {
            return .failure(error)
        }
    }()

    @Test func everyTestRanInEveryConfigurationThisHostHasRoundByRound() throws {
        let results = try Self.run.get()
        let settings = WorkloadSettings.quick
        #expect(results.mode == .guest && results.settings.quick && results.settings.rounds == settings.rounds)
        #expect(results.configurations.map(\.name) == WorkloadConfiguration.allCases.map(\.name))
        let schedExt = results.configuration(WorkloadConfiguration.vcpufreqSchedExt.name)
        if let reason = SchedExt.hostUnavailableReason() {
            #expect(schedExt?.ran == false && schedExt?.note == reason)
        }
        let ran = results.ranConfigurations
        #expect(ran.starts(with: ["baseline", "crosvm-style", "vcpufreq-mmio", "vcpufreq-shared-page"]))
        // Configuration 6 runs where the daemon offers BPF-map pages (its programs loaded: root and BPF here).
        let bpfMap = results.configuration(WorkloadConfiguration.vcpufreqBPFMap.name)
        #expect(bpfMap?.ran == true || bpfMap?.note?.hasPrefix("not on this host (the daemon offers no BPF-map pages") == true,
                "\(bpfMap?.note ?? "")")
        #expect(results.tests.map(\.name) == WorkloadTest.allCases.map(\.name) + [Analysis.weightedTotal])
        #expect(results.runs.count == settings.rounds * WorkloadTest.allCases.count * ran.count)
        #expect(results.runs.allSatisfy { $0.failure == nil && $0.raw != nil }, "\(results.runs.compactMap(\.failure))")
        // Interleaved: every round has every test in every configuration, the order rotated.
        for round in 0..<settings.rounds {
            let order = results.runs.filter { $0.round == round }.map(\.configuration)
            #expect(Set(order) == Set(ran))
            #expect(order.first == ran[round % ran.count])
        }
        // Each test's baseline averages 1000 by the definition of the scale; every ran cell has a score and an interval.
        for row in results.tests {
            for name in ran {
                let result = try #require(row.result(name))
                #expect(result.score.map { $0 > 0 } == true && result.rounds == settings.rounds)
                #expect(result.scoreCi95?.count == 2 && result.efficiency.map { $0 > 0 } == true)
                if name != "baseline" { #expect(result.deltaPercent != nil && result.ci95Percent?.count == 2) }
            }
            if row.name != Analysis.weightedTotal {
                // (a round with no deadline met scores the floor, not 0)
                #expect(abs((row.result("baseline")?.score ?? 0) - 1000) <= Analysis.scoreFloor + 1e-6)
                #expect(row.result("baseline")?.deltaPercent == 0)
            }
        }
    }

    /// What each configuration's guests did, from three sides: the guest's
    /// own counters, the VMM's exit counters, the daemon's STATUS.
    @Test func theGuestsTheVMMAndTheDaemonAgreeOnWhatEachPathDid() throws {
        let results = try Self.run.get()
        for run in results.runs {
            let cost = run.cost
            let outcome = try #require(run.outcome)
            let program = TestProgram.generate(
                test: WorkloadTest.allCases.first { $0.name == run.test }!, vcpuCount: results.settings.vcpus,
                seconds: WorkloadSettings.quick.secondsPerTest,
                seed: SplitMix64.derive(results.settings.seed, UInt64(WorkloadTest.allCases.firstIndex { $0.name == run.test }!), UInt64(run.round)),
                timeScale: WorkloadSettings.quick.timeScale)
            #expect(outcome.jobs == program.jobCount, "every job of the round's program has its record")
            #expect(cost.guestTicks > 0 && cost.guestThreadSeconds > 0 && cost.wallSeconds > 0)
            switch run.configuration {
            case "baseline":
                #expect(cost.guestRequests == 0 && cost.mmioReads == 0 && cost.mmioWrites == 0 && cost.daemonSeconds == 0)
            case "crosvm-style":
                #expect(cost.mmioWrites == cost.guestRequests && cost.mmioReads == cost.guestTicks, "every set_perf and cur_perf exits")
                #expect(cost.daemonRequests == nil && cost.daemonSeconds == 0)
            case "vcpufreq-mmio":
                #expect(cost.mmioWrites == cost.guestRequests && cost.mmioReads == cost.guestTicks)
                #expect(cost.daemonRequests == cost.guestRequests, "each forwarded set_perf is a request to the daemon")
                #expect(cost.guestKicks == 0)
            case "vcpufreq-shared-page":
                #expect(cost.mmioReads == 0 && cost.mmioWrites == 0, "publishes, kicks and mirror loads never exit")
                #expect(cost.guestKicks <= cost.guestRequests && (cost.daemonRequests ?? 0) <= cost.guestRequests)
                #expect((cost.daemonKicks ?? 0) <= cost.guestKicks)
            case "vcpufreq-bpf-map":
                #expect(cost.mmioReads == 0 && cost.mmioWrites == 0, "publishes and mirror loads never exit")
                #expect(cost.guestKicks == 0 && (cost.daemonKicks ?? 0) == 0, "kick_mode scheduler: no doorbell")
                #expect((cost.daemonRequests ?? 0) <= cost.guestRequests)
                // The host's BPF programs (not the daemon) read every vCPU's slot in place.
                #expect(cost.schedulerSeenVCPUs == results.settings.vcpus && cost.schedulerRejectedVCPUs == 0)
            default:
                break
            }
            if run.configuration != "baseline" { #expect(cost.guestRequests > 0, "\(run.configuration) \(run.test)") }
        }
        for name in ["vcpufreq-mmio", "vcpufreq-shared-page"] {
            let runs = results.runs.filter { $0.configuration == name }
            #expect(runs.contains { $0.cost.daemonSeconds > 0 }, "the daemon's threads ran for \(name)")
            #expect(runs.reduce(0) { $0 + ($1.cost.daemonRequests ?? 0) } > 0)
        }
        // Writing is mostly think time: the vCPU threads sleep through it (the kernel's schedstat says so).
        for run in results.runs where run.test == WorkloadTest.writing.name {
            #expect(run.cost.idleStores > 0 && run.cost.idleSleepSeconds > 0)
            #expect(run.cost.guestThreadSeconds < 0.8 * run.cost.wallSeconds * Double(results.settings.vcpus))
        }
        #expect(results.notes.contains { $0.hasPrefix("crosvm-style: ") })
        #expect(results.configuration("vcpufreq-shared-page")?.actuators?.hasPrefix("daemon: clamp=") == true)
    }

    @Test func theFilesAreWrittenAndTheJSONReadsBack() throws {
        let results = try Self.run.get()
        let directory = NSTemporaryDirectory() + "workload-smoke-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try WorkloadResultsFiles.write(results, to: directory)
        let reread = try WorkloadResultsFiles.read(directory + "/workload.json")
        #expect(reread.tests == results.tests && reread.runs.count == results.runs.count)
        let markdown = try String(contentsOfFile: directory + "/workload.md", encoding: .utf8)
        #expect(markdown.contains("| Test Case | Baseline | crosvm-style | %delta (95 % CI) |"))
        #expect(markdown.contains("quick mode"))
        #expect(try String(contentsOfFile: directory + "/workload.svg", encoding: .utf8).hasPrefix("<svg"))
    }
}
