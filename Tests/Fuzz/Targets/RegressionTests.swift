import Foundation
import Testing

/// The fuzz targets' bodies in the ordinary suite (scripts/fuzz runs them
/// under libFuzzer): every committed input — each crash a campaign found,
/// minimized (Tests/Fuzz/regressions/TARGET), and the seed corpus
/// (Tests/Fuzz/corpus/TARGET) — and the seeds as the code builds them now
/// must hold every invariant. `VCPUFREQ_FUZZ_WRITE_SEEDS=1` rewrites the
/// seed corpus from the code (docs/fuzzing.md).
@Suite(.serialized) struct FuzzRegressionTests {
    /// Tests/Fuzz, from this file's place in Tests/Fuzz/Targets.
    static let root: String = {
        var path = "\(#filePath)".split(separator: "/", omittingEmptySubsequences: false)
        path.removeLast(2)
        return path.joined(separator: "/")
    }()

    static func files(_ directory: String) -> [(name: String, bytes: [UInt8])] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        return names.sorted().compactMap { name in
            FileManager.default.contents(atPath: "\(directory)/\(name)").map { (name, Array($0)) }
        }
    }

    /// Runs `bytes` through `target`, recording every broken invariant.
    static func replay(_ target: FuzzTarget, _ name: String, _ bytes: [UInt8]) -> Int {
        nonisolated(unsafe) var violations = 0
        let previous = FuzzInvariant.report
        FuzzInvariant.report = { message, file, line in
            violations += 1
            Issue.record("\(target.name) input \(name): \(file):\(line): invariant violated: \(message)")
        }
        defer { FuzzInvariant.report = previous }
        bytes.withUnsafeBytes { target.run($0) }
        return violations
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func committedInputsHoldEveryInvariant(name: String) throws {
        let target = try #require(FuzzTargets.all.first { $0.name == name })
        let regressions = Self.files("\(Self.root)/regressions/\(name)")
        let corpus = Self.files("\(Self.root)/corpus/\(name)")
        #expect(!corpus.isEmpty, "Tests/Fuzz/corpus/\(name) is empty (VCPUFREQ_FUZZ_WRITE_SEEDS=1 writes it)")
        for (file, bytes) in regressions + corpus {
            #expect(Self.replay(target, file, bytes) == 0)
        }
    }

    @Test(arguments: FuzzTargets.all.map(\.name))
    func seedsHoldEveryInvariant(name: String) throws {
        let target = try #require(FuzzTargets.all.first { $0.name == name })
        let seeds = target.seeds()
        #expect(!seeds.isEmpty)
        let write = ProcessInfo.processInfo.environment["VCPUFREQ_FUZZ_WRITE_SEEDS"] == "1"
        let directory = "\(Self.root)/corpus/\(name)"
        if write { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        for seed in seeds {
            #expect(Self.replay(target, seed.name, seed.bytes) == 0)
            if write { try Data(seed.bytes).write(to: URL(fileURLWithPath: "\(directory)/\(seed.name)")) }
        }
    }
}
