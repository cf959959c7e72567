import Foundation
import Testing
import VCPUFreqBenchSupport
@testable import VCPUFreqWorkloadBench

/// The table from the runs: scale, deltas, intervals, the total, efficiency; and the JSON keys promised.
@Suite struct AnalysisTests {
    @Test func identicalPairsHaveNoChangeAndAConstantRatioIsExact() {
        let same = Bootstrap.interval(count: 5, seed: 1) { Bootstrap.percentChange([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], at: $0) }
        #expect(same == 0...0)
        let tenPercent = Bootstrap.interval(count: 4, seed: 1) { Bootstrap.percentChange([1.1, 2.2, 3.3, 4.4], [1, 2, 3, 4], at: $0) }
        #expect(abs(tenPercent!.lowerBound - 10) < 1e-9 && abs(tenPercent!.upperBound - 10) < 1e-9)
        #expect(Bootstrap.interval(count: 1, seed: 1) { _ in 1 } == nil)
    }

    @Test func theIntervalIsSeededAndHoldsTheEstimate() {
        let values = [980.0, 1010, 1003, 995, 1030, 970, 1012]
        let a = Bootstrap.interval(count: values.count, seed: 9) { Bootstrap.mean(values, at: $0) }
        let b = Bootstrap.interval(count: values.count, seed: 9) { Bootstrap.mean(values, at: $0) }
        #expect(a == b)
        let mean = values.reduce(0, +) / Double(values.count)
        #expect(a!.contains(mean) && a!.lowerBound >= values.min()! && a!.upperBound <= values.max()!)
    }

    static func samples(_ raws: [[[Double]]], cpu: Double = 2) -> [[[Analysis.Sample?]]] {
        raws.map { tests in tests.map { rounds in rounds.map { Analysis.Sample(raw: $0, cpuSeconds: cpu) } } }
    }

    @Test func scoresAreScaledToTheBaselinesMeanAndTheTotalIsTheGeometricMean() {
        // Two tests, three rounds; the other configuration is 10 % better on test A, the same on B.
        let rows = Analysis.rows(
            samples: Self.samples([[[2, 4, 6], [1, 1, 1]], [[2.2, 4.4, 6.6], [1, 1, 1]]]), configurations: ["baseline", "x"],
            tests: ["A", "B"], scaled: true, weightedTotal: true)
        #expect(rows.map(\.name) == ["A", "B", Analysis.weightedTotal])
        #expect(abs(rows[0].results[0].score! - 1000) < 1e-9 && abs(rows[1].results[0].score! - 1000) < 1e-9)
        #expect(abs(rows[0].results[1].score! - 1100) < 1e-9)
        #expect(abs(rows[0].results[1].deltaPercent! - 10) < 1e-9)
        #expect(rows[0].results[1].ci95Percent.map { abs($0[0] - 10) < 1e-9 && abs($0[1] - 10) < 1e-9 } == true)
        #expect(rows[0].results[0].deltaPercent == 0 && rows[1].results[1].deltaPercent == 0)
        // Total, round 0: sqrt(500 × 1000) for the baseline, sqrt(550 × 1000) for x.
        let baselineTotal = [500.0, 1000, 1500].map { ($0 * 1000).squareRoot() }.reduce(0, +) / 3
        #expect(abs(rows[2].results[0].score! - baselineTotal) < 1e-9)
        #expect(abs(rows[2].results[1].deltaPercent! - 100 * (1.1.squareRoot() - 1)) < 1e-9)
        // Score per CPU-second: 2 s per run, the total over both tests' 4 s.
        #expect(abs(rows[0].results[0].efficiency! - 500) < 1e-9)
        #expect(abs(rows[2].results[0].efficiency! - baselineTotal / 4) < 1e-9)
        #expect(abs(rows[0].results[1].efficiencyDeltaPercent! - 10) < 1e-9)
    }

    @Test func aMissingRoundIsLeftOutOfThePairsAndAConfigurationWithoutRunsHasNoFigures() {
        var samples = Self.samples([[[1, 1, 1]], [[1, 2, 1]], [[1, 1, 1]]])
        samples[1][0][1] = nil
        samples[2][0] = [nil, nil, nil]
        let rows = Analysis.rows(samples: samples, configurations: ["b", "x", "y"], tests: ["A"], scaled: true, weightedTotal: true)
        #expect(rows.count == 1, "no total for one test")
        #expect(rows[0].results[1].rounds == 2 && rows[0].results[1].deltaPercent == 0)
        #expect(rows[0].results[2] == ConfigurationResult(configuration: "y", rounds: 0))
    }

    @Test func scoresAreFlooredSoTheTotalStaysDefined() {
        let rows = Analysis.rows(
            samples: Self.samples([[[1, 1], [1, 1]], [[0, 0], [1, 1]]]), configurations: ["b", "x"], tests: ["A", "B"],
            scaled: true, weightedTotal: true)
        #expect(rows[0].results[1].score == Analysis.scoreFloor)
        #expect(abs(rows[2].results[1].score! - (Analysis.scoreFloor * 1000).squareRoot()) < 1e-9)
    }

    @Test func unscaledScoresAreTheExternalBenchmarksOwn() {
        let rows = Analysis.rows(
            samples: Self.samples([[[6136, 6100]], [[7274, 7300]]]), configurations: ["off", "on"], tests: ["PCMark Work"],
            scaled: false, weightedTotal: true)
        #expect(rows.count == 1 && rows[0].results[0].score == 6118 && rows[0].results[1].score == 7287)
    }

    @Test func theJSONHasThePromisedKeys() throws {
        let results = SyntheticWorkload.results()
        let object = try JSONSerialization.jsonObject(with: ResultsFiles.encode(results)) as! [String: Any]
        let configurations = object["configurations"] as! [[String: Any]]
        #expect(configurations.map { $0["name"] as! String } == WorkloadConfiguration.allCases.map(\.name))
        let tests = object["tests"] as! [[String: Any]]
        #expect(tests.map { $0["name"] as! String } == WorkloadTest.allCases.map(\.name) + [Analysis.weightedTotal])
        for test in tests {
            let results = test["results"] as! [[String: Any]]
            #expect(results.map { $0["configuration"] as! String } == WorkloadConfiguration.allCases.map(\.name))
            let crosvm = results[1]
            #expect(crosvm["score"] is Double && crosvm["delta_percent"] is Double)
            #expect((crosvm["ci95_percent"] as? [Double])?.count == 2)
            #expect(results[4]["score"] == nil && results[4]["note"] as? String == "not on this host (no sched_ext)")
        }
        let decoded = try JSONDecoder().decode(WorkloadResults.self, from: ResultsFiles.encode(results))
        #expect(decoded.tests == results.tests && decoded.runs == results.runs)
    }
}
