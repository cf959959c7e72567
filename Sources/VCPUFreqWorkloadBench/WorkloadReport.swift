import VCPUFreqBenchSupport

/// The Markdown of a run (results/workload.md), the table the README
/// shows, and the lines `bench workload` prints. Pure: from the results.
public enum WorkloadReport {
    public static let readme = ReadmeSection(begin: "<!-- workload-bench:begin -->", end: "<!-- workload-bench:end -->")

    /// "+3.2 % [−1.0, +7.5]"; "—" without a figure.
    public static func delta(_ percent: Double?, _ interval: [Double]?) -> String {
        guard let percent else { return "—" }
        var text = signed(percent) + " %"
        if let interval, interval.count == 2 { text += " [\(signed(interval[0])), \(signed(interval[1]))]" }
        return text
    }

    static func signed(_ value: Double) -> String {
        let text = NumberFormat.fixed(value, 1)
        return value >= 0 && !text.hasPrefix("-") ? "+" + text : text.replacingOccurrences(of: "-", with: "−")
    }

    static func score(_ value: Double?) -> String {
        guard let value else { return "—" }
        return value >= 100 ? String(Int(value.rounded())) : NumberFormat.significant(value)
    }

    /// The PCMark-style table: Test Case | Baseline | config | %delta | …;
    /// `efficiency` gives score per CPU-second instead of the score.
    public static func scoreTable(_ results: WorkloadResults, efficiency: Bool = false) -> String {
        let names = results.configurations.map(\.name)
        guard let reference = names.first else { return "" }
        var header = "| Test Case | \(reference == "baseline" ? "Baseline" : reference) |"
        var rule = "|---|---:|"
        for name in names.dropFirst() {
            header += " \(name) | %delta (95 % CI) |"
            rule += "---:|---:|"
        }
        var lines = [header, rule]
        for row in results.tests {
            let bold = row.name == Analysis.weightedTotal
            func cell(_ text: String) -> String { bold && text != "—" ? "**\(text)**" : text }
            var line = "| \(cell(row.name)) |"
            for (index, name) in names.enumerated() {
                let result = row.result(name)
                if let note = result?.note ?? results.configuration(name)?.note, result?.score == nil {
                    line += index == 0 ? " \(note) |" : " \(note) | |"
                    continue
                }
                let value = efficiency ? result?.efficiency : result?.score
                line += " \(cell(efficiency ? NumberFormat.significant(value ?? .nan) : score(value))) |"
                if index > 0 {
                    line += efficiency
                        ? " \(cell(delta(result?.efficiencyDeltaPercent, result?.efficiencyCi95Percent))) |"
                        : " \(cell(delta(result?.deltaPercent, result?.ci95Percent))) |"
                }
            }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }

    /// Per configuration: what it did and cost, over all its runs.
    public static func costTable(_ results: WorkloadResults) -> String {
        var lines = [
            "| configuration | runs | driver requests / s | MMIO exits / s | kicks / s | VM threads CPU s | daemon CPU s | idle (threads asleep) | interactive release → running p50 / p99 µs | deadlines met |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for summary in results.summaries {
            let delay = summary.interactiveStartDelay.map {
                "\(NumberFormat.significant($0.p50)) / \(NumberFormat.significant($0.p99))"
            } ?? "—"
            lines.append(
                "| \(summary.configuration) | \(summary.runs - summary.failedRuns)\(summary.failedRuns > 0 ? " (\(summary.failedRuns) failed)" : "") "
                    + "| \(NumberFormat.significant(summary.guestRequestsPerSecond)) | \(NumberFormat.significant(summary.mmioExitsPerSecond)) "
                    + "| \(NumberFormat.significant(summary.guestKicksPerSecond)) | \(NumberFormat.decimals(summary.guestThreadSeconds, 2)) "
                    + "| \(NumberFormat.decimals(summary.daemonSeconds, 2)) | \(NumberFormat.decimals(100 * summary.idleSleepShare, 0)) % "
                    + "| \(delay) | \(summary.deadlineMetPercent.map { NumberFormat.decimals($0, 1) + " %" } ?? "—") |")
        }
        return lines.joined(separator: "\n")
    }

    /// Energy and frequency per configuration, or why not.
    public static func energyTable(_ results: WorkloadResults) -> String {
        var lines = [
            "| configuration | energy, all runs (J) | \(results.mode == .guest ? "Weighted Total" : "score") per J | mean frequency (MHz) |",
            "|---|---:|---:|---:|",
        ]
        let total = results.row(Analysis.weightedTotal) ?? results.tests.last
        for summary in results.summaries {
            let energy = summary.energyJoules.map { NumberFormat.decimals($0, 1) } ?? results.host.energy
            var perJoule = "—"
            if let joules = summary.energyJoules, joules > 0, let score = total?.result(summary.configuration)?.score {
                // The score of a round over the energy of a round (all its tests).
                perJoule = NumberFormat.significant(score / (joules / Double(max(results.settings.rounds, 1))))
            } else if summary.energyJoules == nil {
                perJoule = results.host.energy
            }
            let frequency = summary.meanFrequencyMegahertz.map { NumberFormat.decimals($0, 0) }
                ?? results.host.frequencyResidency
            lines.append("| \(summary.configuration) | \(energy) | \(perJoule) | \(frequency) |")
        }
        return lines.joined(separator: "\n")
    }

    /// Per test and configuration: the raw figures behind the scores.
    public static func detailTable(_ results: WorkloadResults) -> String {
        var lines = [
            "| test | configuration | raw (mean) | deadlines met | release → end p50 / p99 µs (deadline jobs) | interactive release → running p99 µs | requests / run | MMIO exits / run |",
            "|---|---|---:|---:|---:|---:|---:|---:|",
        ]
        let tests = results.tests.map(\.name).filter { $0 != Analysis.weightedTotal }
        for test in tests {
            for configuration in results.ranConfigurations {
                let runs = results.runs.filter { $0.test == test && $0.configuration == configuration && $0.raw != nil }
                guard !runs.isEmpty else { continue }
                let count = Double(runs.count)
                let raw = runs.reduce(0) { $0 + ($1.raw ?? 0) } / count
                let outcomes = runs.compactMap(\.outcome)
                let met = outcomes.reduce((0, 0)) { ($0.0 + $1.metJobs, $0.1 + $1.deadlineJobs) }
                func median(_ values: [Double]) -> String {
                    guard !values.isEmpty else { return "—" }
                    return NumberFormat.significant(values.sorted()[values.count / 2])
                }
                let responses = outcomes.compactMap(\.deadlineResponse)
                let response = responses.isEmpty ? "—" : "\(median(responses.map(\.p50))) / \(median(responses.map(\.p99)))"
                lines.append(
                    "| \(test) | \(configuration) | \(NumberFormat.significant(raw)) "
                        + "| \(met.1 > 0 ? NumberFormat.decimals(100 * Double(met.0) / Double(met.1), 1) + " %" : "—") "
                        + "| \(response) | \(median(outcomes.compactMap(\.interactiveStartDelay?.p99))) "
                        + "| \(NumberFormat.decimals(runs.reduce(0) { $0 + Double($1.cost.guestRequests) } / count, 0)) "
                        + "| \(NumberFormat.decimals(runs.reduce(0) { $0 + Double($1.cost.mmioReads + $1.cost.mmioWrites) } / count, 0)) |")
            }
        }
        return lines.joined(separator: "\n")
    }

    /// Sentences derived from the table: which changes the intervals separate from zero.
    public static func findings(_ results: WorkloadResults) -> [String] {
        var sentences: [String] = []
        guard let reference = results.configurations.first?.name else { return [] }
        for row in results.tests {
            var separated: [String] = []
            var within: [String] = []
            for result in row.results where result.configuration != reference {
                guard let change = result.deltaPercent, let interval = result.ci95Percent, interval.count == 2 else {
                    continue
                }
                let text = "\(result.configuration) \(delta(change, interval))"
                if interval[0] > 0 || interval[1] < 0 { separated.append(text) } else { within.append(text) }
            }
            guard !separated.isEmpty || !within.isEmpty else { continue }
            var sentence = "\(row.name): "
            if !separated.isEmpty { sentence += "differs from \(reference) at 95 %: " + separated.joined(separator: ", ") }
            if !within.isEmpty {
                sentence += (separated.isEmpty ? "" : "; ") + "no difference the intervals can separate from zero: "
                    + within.joined(separator: ", ")
            }
            sentences.append(sentence + ".")
        }
        return sentences
    }

    /// The whole report.
    public static func markdown(_ results: WorkloadResults) -> String {
        var text = "# `vcpufreq bench workload` — \(results.mode == .guest ? "PCMark-style guest workloads on real KVM" : "an external benchmark A/B")\n\n"
        text += "Run \(results.date). **Load:** `uptime` at the start: `\(results.uptimeBefore)`; at the end: `\(results.uptimeAfter)`.\n\n"
        text += "- Machine: \(results.machine.summaryWithCPUList); \(results.machine.buildConfiguration) build\n"
        text += "- Contention: \(results.contention)\n"
        let settings = results.settings
        if results.mode == .guest {
            text += "- Guest: \(settings.vcpus) vCPUs; each test a seeded program of about \(NumberFormat.decimals(settings.secondsPerTest ?? 0, 2)) s per vCPU; "
                + "scheduler tick \(NumberFormat.decimals((settings.tickMicroseconds ?? 0) / 1000, 0)) ms, PELT period \(NumberFormat.decimals(settings.peltPeriodMicroseconds ?? 0, 0)) µs, "
                + "schedutil rate limit \(NumberFormat.decimals((settings.rateLimitMicroseconds ?? 0) / 1000, 1)) ms; table \(settings.tableKHz.map { String($0 / 1000) }.joined(separator: "/")) MHz\n"
        } else {
            text += "- Command: `\(settings.command ?? "")`, score read with `\(settings.scoreRegex ?? "")`\n"
        }
        text += "- Rounds: \(settings.rounds), interleaved (each round runs every test in every configuration, the configurations' order rotated by one each round), "
            + "the same seeds for every configuration of a round (base seed \(settings.seed))\(settings.quick ? "; **quick mode: structure only, not numbers to quote**" : "")\n"
        if let calibration = results.calibration {
            text += "- Calibration: TSC \(NumberFormat.decimals(calibration.tsc.ticksPerMicrosecond, 1)) ticks/µs, spin \(NumberFormat.decimals(calibration.spinNanosecondsPerIteration, 3)) ns/iteration, "
                + "memory loop \(NumberFormat.decimals(calibration.memoryIterationsPerMicrosecond, 1)) read-modify-writes/µs over \(calibration.bufferBytes >> 20) MiB per vCPU\n"
        }
        if !settings.daemonArguments.isEmpty { text += "- Daemon options: `\(settings.daemonArguments.joined(separator: " "))`\n" }
        text += "\n## Configurations\n\n| configuration | what it is | hints really used | ran |\n|---|---|---|---|\n"
        for configuration in results.configurations {
            text += "| \(configuration.name) | \(configuration.summary) | \(configuration.actuators ?? "—") | "
                + "\(configuration.ran ? "yes" : (configuration.note ?? "no")) |\n"
        }
        text += "\n## Scores\n\n"
        text += results.mode == .guest
            ? "Higher is better. Each test's score is 1000 × its raw figure ÷ the baseline's mean raw figure in this run (so Baseline ≈ 1000); "
                + "the Weighted Total is the geometric mean of the five. %delta is the change of the mean against the baseline over the same rounds; "
                + "its 95 % interval comes from a bootstrap over rounds (bench/workload.md).\n\n"
            : "The external benchmark's own score (mean over rounds); %delta against the first configuration with a 95 % bootstrap interval over rounds.\n\n"
        text += scoreTable(results) + "\n\n"
        text += "## Efficiency: score per CPU-second\n\n"
            + (results.mode == .guest
                ? "Score ÷ CPU time of the VM's threads (its vCPU threads) and the daemon in the run (the Weighted Total ÷ the five tests' CPU time), "
                : "Score ÷ CPU time of the command's processes and the daemon in the run, ")
            + "the analogue of PCMark's score per mAh.\n\n" + scoreTable(results, efficiency: true) + "\n\n"
        text += "## Energy and frequency\n\n" + energyTable(results) + "\n\n"
        text += "## Where the time goes\n\n" + costTable(results) + "\n\n"
        if results.mode == .guest { text += "Per test:\n\n" + detailTable(results) + "\n\n" }
        let findings = findings(results)
        if !findings.isEmpty || !results.notes.isEmpty {
            text += "## Findings and notes\n\n"
            for line in findings + results.notes { text += "- \(line)\n" }
            text += "\n"
        }
        return text
    }

    /// The README's section: when, where, the table.
    public static func readmeSection(_ results: WorkloadResults) -> String {
        "Latest `vcpufreq bench workload` run (\(results.date)) on \(results.machine.summary); contention \(results.settings.contention.rawValue), "
            + "\(results.settings.rounds) rounds; load at the start `\(results.uptimeBefore)` (details: [bench/results/workload.md](bench/results/workload.md), "
            + "definitions: [bench/workload.md](bench/workload.md)).\n\n" + scoreTable(results) + "\n"
    }
}
