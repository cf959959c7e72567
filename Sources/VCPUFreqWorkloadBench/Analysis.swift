import Foundation

/// Turns the runs of a benchmark into its table: per test (and the Weighted
/// Total) each configuration's score, its % change against the reference
/// (the first configuration, "Baseline") with a 95 % bootstrap interval,
/// and score per CPU-second with its change. Pure.
public enum Analysis {
    /// The row name of the geometric mean over the tests.
    public static let weightedTotal = "Weighted Total"

    /// Scores below this are raised to it before the geometric mean (a test
    /// in which no deadline was met would otherwise zero the total).
    public static let scoreFloor = 1.0

    /// One cell of the matrix: a run's raw figure and the CPU time it cost.
    public struct Sample: Sendable, Equatable {
        public var raw: Double
        public var cpuSeconds: Double

        public init(raw: Double, cpuSeconds: Double) {
            self.raw = raw
            self.cpuSeconds = cpuSeconds
        }
    }

    /// - Parameters:
    ///   - samples: `samples[configuration][test][round]`, nil for a run that failed or did not happen.
    ///   - configurations, tests: names, in the order of the matrix; the first configuration is the reference.
    ///   - scaled: scores are 1000 × raw ÷ the reference's mean raw of the test (the guest tests);
    ///     otherwise the raw figure is the score (an external benchmark's own).
    ///   - weightedTotal: add the geometric mean of the tests as a last row.
    public static func rows(
        samples: [[[Sample?]]], configurations: [String], tests: [String], scaled: Bool, weightedTotal: Bool,
        resamples: Int = Bootstrap.defaultResamples, seed: UInt64 = 0x5C0_4E5
    ) -> [TestRow] {
        let rounds = samples.flatMap { $0.map(\.count) }.max() ?? 0
        func sample(_ c: Int, _ t: Int, _ r: Int) -> Sample? {
            guard c < samples.count, t < samples[c].count, r < samples[c][t].count else { return nil }
            return samples[c][t][r]
        }
        // Per test, the reference's mean raw: the score's scale.
        let scale: [Double] = tests.indices.map { t in
            let values = (0..<rounds).compactMap { sample(0, t, $0)?.raw }
            let mean = values.isEmpty ? 0 : values.reduce(0, +) / Double(values.count)
            return mean > 0 ? 1000 / mean : 0
        }
        func score(_ c: Int, _ t: Int, _ r: Int) -> Double? {
            guard let raw = sample(c, t, r)?.raw else { return nil }
            return scaled ? max(raw * scale[t], scoreFloor) : raw
        }
        // score[c][t][r] and cpu[c][t][r]; the total as one more test.
        var scores: [[[Double?]]] = configurations.indices.map { c in
            tests.indices.map { t in (0..<rounds).map { score(c, t, $0) } }
        }
        var cpu: [[[Double?]]] = configurations.indices.map { c in
            tests.indices.map { t in (0..<rounds).map { sample(c, t, $0)?.cpuSeconds } }
        }
        var names = tests
        if weightedTotal, tests.count > 1 {
            names.append(Self.weightedTotal)
            for c in configurations.indices {
                scores[c].append((0..<rounds).map { r in
                    let values = scores[c].compactMap { $0[r] }
                    guard values.count == tests.count else { return nil }
                    return geometricMean(values)
                })
                cpu[c].append((0..<rounds).map { r in
                    let values = cpu[c].prefix(tests.count).compactMap { $0[r] }
                    return values.count == tests.count ? values.reduce(0, +) : nil
                })
            }
        }
        return names.indices.map { t in
            TestRow(name: names[t], results: configurations.indices.map { c in
                result(
                    configuration: configurations[c], scores: scores[c][t], reference: scores[0][t], cpu: cpu[c][t],
                    referenceCPU: cpu[0][t], resamples: resamples,
                    seed: SplitMix64.derive(seed, UInt64(c), UInt64(t)))
            })
        }
    }

    static func result(
        configuration: String, scores: [Double?], reference: [Double?], cpu: [Double?], referenceCPU: [Double?],
        resamples: Int, seed: UInt64
    ) -> ConfigurationResult {
        let own = scores.compactMap { $0 }
        guard !own.isEmpty else { return ConfigurationResult(configuration: configuration, rounds: 0) }
        var result = ConfigurationResult(configuration: configuration, rounds: own.count)
        result.score = own.reduce(0, +) / Double(own.count)
        result.scoreCi95 = Bootstrap.interval(count: own.count, resamples: resamples, seed: seed) {
            Bootstrap.mean(own, at: $0)
        }.map { [$0.lowerBound, $0.upperBound] }
        // Rounds both ran: the paired comparison.
        let paired = scores.indices.filter { $0 < reference.count && scores[$0] != nil && reference[$0] != nil }
        let mine = paired.map { scores[$0]! }
        let theirs = paired.map { reference[$0]! }
        if !paired.isEmpty {
            result.deltaPercent = Bootstrap.percentChange(mine, theirs)
            result.ci95Percent = Bootstrap.interval(count: paired.count, resamples: resamples, seed: seed ^ 1) {
                Bootstrap.percentChange(mine, theirs, at: $0)
            }.map { [$0.lowerBound, $0.upperBound] }
        }
        // Score per CPU-second, per round, then the same comparison.
        func efficiency(_ values: [Double?], _ seconds: [Double?], _ round: Int) -> Double? {
            guard round < values.count, round < seconds.count, let score = values[round], let time = seconds[round],
                time > 0
            else { return nil }
            return score / time
        }
        let ownEfficiency = scores.indices.compactMap { efficiency(scores, cpu, $0) }
        if !ownEfficiency.isEmpty { result.efficiency = ownEfficiency.reduce(0, +) / Double(ownEfficiency.count) }
        let pairedEfficiency = scores.indices.compactMap { round -> (Double, Double)? in
            guard let a = efficiency(scores, cpu, round), let b = efficiency(reference, referenceCPU, round) else {
                return nil
            }
            return (a, b)
        }
        if !pairedEfficiency.isEmpty {
            let a = pairedEfficiency.map(\.0)
            let b = pairedEfficiency.map(\.1)
            result.efficiencyDeltaPercent = Bootstrap.percentChange(a, b)
            result.efficiencyCi95Percent = Bootstrap.interval(count: a.count, resamples: resamples, seed: seed ^ 2) {
                Bootstrap.percentChange(a, b, at: $0)
            }.map { [$0.lowerBound, $0.upperBound] }
        }
        return result
    }

    /// exp(mean(log x)) of positive values; 0 when one is not positive.
    public static func geometricMean(_ values: [Double]) -> Double {
        guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else { return 0 }
        var sum = 0.0
        for value in values { sum += log(value) }
        return exp(sum / Double(values.count))
    }
}

/// One row of the table: a test (or the Weighted Total) and every
/// configuration's figures. The JSON keys are the ones workload.json
/// promises (`name`, `results`, `configuration`, `score`, `delta_percent`,
/// `ci95_percent`).
public struct TestRow: Sendable, Equatable, Codable {
    public var name: String
    public var results: [ConfigurationResult]

    public init(name: String, results: [ConfigurationResult]) {
        self.name = name
        self.results = results
    }

    public func result(_ configuration: String) -> ConfigurationResult? {
        results.first { $0.configuration == configuration }
    }
}

/// A configuration's figures in one row; nil fields were not measured.
public struct ConfigurationResult: Sendable, Equatable, Codable {
    public var configuration: String
    /// Mean over rounds.
    public var score: Double?
    /// 95 % bootstrap interval of the mean score.
    public var scoreCi95: [Double]?
    /// 100 × (mean score ÷ the reference's mean score over the same rounds − 1).
    public var deltaPercent: Double?
    /// 95 % bootstrap interval of `deltaPercent` (rounds resampled in pairs).
    public var ci95Percent: [Double]?
    /// Mean over rounds of score ÷ CPU-seconds of the run (the VM's threads + the daemon).
    public var efficiency: Double?
    public var efficiencyDeltaPercent: Double?
    public var efficiencyCi95Percent: [Double]?
    /// Rounds with a result.
    public var rounds: Int
    /// Why there is no figure (a configuration this host cannot run).
    public var note: String?

    public init(configuration: String, rounds: Int, note: String? = nil) {
        self.configuration = configuration
        self.rounds = rounds
        self.note = note
    }

    enum CodingKeys: String, CodingKey {
        case configuration, score, rounds, note, efficiency
        case scoreCi95 = "score_ci95"
        case deltaPercent = "delta_percent"
        case ci95Percent = "ci95_percent"
        case efficiencyDeltaPercent = "efficiency_delta_percent"
        case efficiencyCi95Percent = "efficiency_ci95_percent"
    }
}
