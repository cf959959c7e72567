import Foundation
import Testing
import VCPUFreqKVM
@testable import VCPUFreqWorkloadBench

/// What the user writes (configurations, the score expression) and what the
/// host offers (RAPL, cpufreq stats, sched_ext), on fixture trees.
@Suite struct InputTests {
    @Test func guestConfigurationsAreNamedAndUnknownOnesRefusedByName() throws {
        #expect(try WorkloadConfiguration.list("baseline, vcpufreq-shared-page") == [.baseline, .vcpufreqSharedPage])
        #expect(try WorkloadConfiguration.list("baseline,baseline") == [.baseline])
        let error = #expect(throws: WorkloadBenchError.self) { try WorkloadConfiguration.list("baseline,crosvm") }
        #expect(error?.description.contains("--configurations: unknown configuration \"crosvm\"") == true)
        #expect(error?.isUsage == true)
    }

    @Test func commandConfigurationsAreSetsOfDaemonSettings() throws {
        let off = try CommandConfiguration.parse("baseline:daemon=off")
        #expect(!off.daemon && off.summary == "no daemon")
        let on = try CommandConfiguration.parse("tuned:clamp=none,latency=slice,pin=off,kick=never,scheduler=sched-ext,args=--busy-poll-us 500")
        #expect(on.daemon && on.kickMode == "never")
        #expect(on.serveArguments == ["--clamp", "none", "--latency", "slice", "--no-pin", "--scheduler", "sched-ext", "--busy-poll-us", "500"])
        #expect(try CommandConfiguration.parse("plain").serveArguments == [])
    }

    @Test(arguments: [
        ("", "needs a name"), ("a b", "needs a name"), ("x:colour=red", "unknown key \"colour\""),
        ("x:kick=sometimes", "expected adaptive, always or never"), ("x:daemon=maybe", "expected on or off"),
        ("x:clamp", "is not KEY=VALUE"), ("x:daemon=off,clamp=none", "daemon=off takes no daemon settings"),
    ])
    func badCommandConfigurationsNameTheFlagAndTheProblem(text: String, message: String) {
        let error = #expect(throws: WorkloadBenchError.self) { try CommandConfiguration.parse(text) }
        #expect(error?.description.hasPrefix("--configurations") == true)
        #expect(error?.description.contains(message) == true, "\(String(describing: error))")
    }

    @Test func theScoreIsTheLastMatchsFirstGroup() throws {
        let extractor = try ScoreExtractor(pattern: "Score: ([0-9.,]+)")
        #expect(try extractor.score(in: "warm-up Score: 1\nrun\nScore: 7,274\n").get() == 7274)
        let whole = try ScoreExtractor(pattern: "[0-9]+\\.[0-9]+")
        #expect(try whole.score(in: "fps 28.66").get() == 28.66)
        guard case .failure(let missing) = extractor.score(in: "no score today") else { Issue.record("matched"); return }
        #expect(missing.description.contains("no match"))
        let words = try ScoreExtractor(pattern: "Score: (\\w+)")
        guard case .failure(let notNumber) = words.score(in: "Score: high") else { Issue.record("parsed"); return }
        #expect(notNumber.description.contains("\"high\""))
        let error = #expect(throws: WorkloadBenchError.self) { try ScoreExtractor(pattern: "(unclosed") }
        #expect(error?.description.hasPrefix("--score-regex \"(unclosed\"") == true)
    }

    static func fixture(_ files: [String: String]) throws -> String {
        let root = NSTemporaryDirectory() + "workload-fixture-" + UUID().uuidString
        for (path, content) in files {
            let full = root + "/" + path
            try FileManager.default.createDirectory(
                atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: full, atomically: true, encoding: .utf8)
        }
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        return root
    }

    @Test func raplIsReadFromTheTopLevelZonesAndAWrapAddsTheRange() throws {
        let root = try Self.fixture([
            "intel-rapl:0/energy_uj": "1000000\n", "intel-rapl:0/max_energy_range_uj": "262143328850\n",
            "intel-rapl:0:0/energy_uj": "5\n", "intel-rapl:1/energy_uj": "262143000000\n",
            "intel-rapl:1/max_energy_range_uj": "262143328850\n",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let meter = EnergyMeter(root: root)
        #expect(meter.zones == ["intel-rapl:0", "intel-rapl:1"])
        let before = try #require(meter.read())
        var after = before
        after.microjoules["intel-rapl:0"] = 3_500_000
        after.microjoules["intel-rapl:1"] = 671_150  // wrapped: 328 850 to the range, then 671 150
        #expect(abs(EnergyMeter.joules(from: before, to: after) - 3.5) < 1e-9)
        #expect(EnergyMeter(root: root + "/absent").read() == nil)
    }

    @Test func frequencyResidencyIsTheTimeWeightedMean() throws {
        let root = try Self.fixture([
            "cpu0/cpufreq/stats/time_in_state": "1000000 10\n2000000 10\n",
            "cpu1/cpufreq/stats/time_in_state": "1000000 0\n2000000 0\n", "cpufreq/policy0/x": "",
        ])
        defer { try? FileManager.default.removeItem(atPath: root) }
        let residency = FrequencyResidency(root: root)
        let before = try #require(residency.read())
        #expect(before.count == 2)
        var after = before
        after[0] = [1_000_000: 40, 2_000_000: 10]  // 30 ticks at 1 GHz
        after[1] = [1_000_000: 0, 2_000_000: 10]  // 10 ticks at 2 GHz
        #expect(FrequencyResidency.meanMegahertz(from: before, to: after) == 1250)
        #expect(FrequencyResidency.meanMegahertz(from: before, to: before) == nil)
        #expect(FrequencyResidency(root: root + "/absent").read() == nil)
    }

    @Test func schedExtIsTakenFromTheKernelAndTheDaemonsOwnReport() throws {
        let absent = try Self.fixture([:])
        let present = try Self.fixture(["state": "enabled\n", "root/ops": "vcpufreq\n"])
        defer {
            try? FileManager.default.removeItem(atPath: absent)
            try? FileManager.default.removeItem(atPath: present)
        }
        #expect(SchedExt.hostUnavailableReason(root: absent) == "not on this host (no sched_ext)")
        #expect(SchedExt.hostUnavailableReason(root: present) == nil)
        #expect(SchedExt.kernelState(root: present) == "enabled" && SchedExt.loadedOps(root: present) == "vcpufreq")
        let loaded = Array(#"{"daemon": {"pid": 1, "scheduler": "loaded: vcpufreq"}, "vms": []}"#.utf8)
        #expect(SchedExt.isLoaded(SchedExt.daemonReport(statusJSON: loaded)))
        let refused = Array(#"{"daemon": {"scheduler": "not loaded: another scheduler is loaded"}}"#.utf8)
        #expect(!SchedExt.isLoaded(SchedExt.daemonReport(statusJSON: refused)))
        #expect(SchedExt.daemonReport(statusJSON: Array(#"{"daemon": {"bpf": "loaded"}}"#.utf8)) == nil)
        #expect(SchedExt.daemonReport(statusJSON: Array("garbage".utf8)) == nil)
    }

    @Test func contentionAndTheVMsRegions() {
        #expect(Contention.allCases.map(\.hogsPerCPU) == [0, 1, 4])
        #expect(Contention.heavy.description(cpuCount: 2).hasPrefix("heavy: 4 CPU hogs per CPU (8 in all)"))
        let regions = GuestRegions(vcpus: 4, jobCapacity: 564, bufferBytes: 32 << 20)
        #expect(regions.blockStride % 0x1000 == 0 && regions.blockStride >= WorkloadParameters.footprint(jobs: 564))
        #expect(regions.block(3) + regions.blockStride <= regions.buffersBase)
        #expect(regions.buffersBase % (2 << 20) == 0 && regions.buffer(3) + (32 << 20) <= regions.ramSize)
        #expect(regions.ramSize < WorkloadTopology.baseAddress)
    }
}
