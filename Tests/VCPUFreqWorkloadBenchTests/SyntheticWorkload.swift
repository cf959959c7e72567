import VCPUFreqBenchSupport
@testable import VCPUFreqWorkloadBench

/// A hand-made guest run: every test, five configurations that ran (each a
/// known factor better than the baseline, with a little noise) and
/// sched-ext not on this host.
enum SyntheticWorkload {
    static let factors: [WorkloadConfiguration: Double] = [
        .baseline: 1, .crosvmStyle: 0.98, .vcpufreqMMIO: 0.95, .vcpufreqSharedPage: 1.05, .vcpufreqBPFMap: 1.06,
    ]

    /// Built once (the bootstrap takes a while in a debug build).
    static let shared = make()

    static func results() -> WorkloadResults { shared }

    static func make(rounds: Int = 5) -> WorkloadResults {
        let configurations = WorkloadConfiguration.allCases
        var runs: [RunRecord] = []
        for round in 0..<rounds {
            for test in WorkloadTest.allCases {
                for configuration in configurations {
                    guard let factor = factors[configuration] else { continue }
                    var cost = RunCost()
                    cost.wallSeconds = 2
                    cost.guestThreadSeconds = 0.5
                    cost.daemonSeconds = configuration.usesDaemon ? 0.01 : 0
                    cost.guestRequests = configuration == .baseline ? 0 : 100
                    let noise = 1 + 0.01 * Double((round * 7 + test.hashValue & 3) % 3 - 1)
                    let raw = 10 * factor * noise
                    runs.append(RunRecord(
                        configuration: configuration.name, test: test.name, round: round, raw: raw,
                        outcome: TestOutcome(
                            jobs: 10, deadlineJobs: test.scoring == .deadline ? 10 : 0, metJobs: test.scoring == .deadline ? 8 : 0,
                            workMicroseconds: 1000, responseMicroseconds: 1500, elapsedMicroseconds: 2e6,
                            interactiveStartDelay: LatencySummary([10, 20, 30]), deadlineResponse: LatencySummary([100, 200]),
                            raw: raw),
                        cost: cost))
                }
            }
        }
        let samples = configurations.map { configuration in
            WorkloadTest.allCases.map { test in
                (0..<rounds).map { round in
                    runs.first { $0.configuration == configuration.name && $0.test == test.name && $0.round == round }
                        .map { Analysis.Sample(raw: $0.raw!, cpuSeconds: $0.cost.cpuSeconds) }
                }
            }
        }
        let note = "not on this host (no sched_ext)"
        var rows = Analysis.rows(
            samples: samples, configurations: configurations.map(\.name), tests: WorkloadTest.allCases.map(\.name),
            scaled: true, weightedTotal: true)
        for index in rows.indices { rows[index].results[4].note = note }
        let machine = MachineDescription(
            cpuModel: "AMD EPYC", onlineCPUs: 2, onlineCPUList: "0-1", kernel: "6.18", kvmFlavour: "PVM",
            isVirtualMachine: true, clockSource: "tsc", buildConfiguration: "release", swiftVersion: "6.x")
        return WorkloadResults(
            mode: .guest, date: "2026-12-07T12:00:00Z", uptimeBefore: "12:00:00 up 4:00, load average: 1.00, 1.00, 1.00",
            uptimeAfter: "12:05:00 up 4:05, load average: 1.50, 1.10, 1.00", machine: machine,
            settings: .init(
                quick: false, rounds: rounds, contention: .heavy, vcpus: 2, seed: 1, secondsPerTest: 2, tickMicroseconds: 4000,
                peltPeriodMicroseconds: 1024, rateLimitMicroseconds: 1000, tableKHz: WorkloadTopology.tableKHz,
                daemonArguments: []),
            contention: Contention.heavy.description(cpuCount: 2), calibration: nil,
            configurations: configurations.map {
                .init(name: $0.name, summary: $0.summary, ran: $0 != .vcpufreqSchedExt, note: $0 == .vcpufreqSchedExt ? note : nil)
            },
            tests: rows,
            summaries: configurations.filter { factors[$0] != nil }.map {
                ConfigurationSummary.of($0.name, runs: runs, vcpus: 2, startDelays: [10, 20, 30])
            },
            host: .init(energy: "not on this host (no RAPL)", frequencyResidency: "not on this host (no stats)", schedExt: note),
            runs: runs, notes: ["a note"])
    }
}
