import Foundation
import Testing
import VCPUFreqCore

/// `vcpufreq device replay` and `vcpufreq demo`, run as the built binary.
@Suite(.serialized) struct ReplayCLITests {
    private func writeTrace(_ text: String) throws -> String {
        let path = CLI.temporaryPath("trace.txt")
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// Expected values come from the phone fixture's tables (ExpectedTopologies.phone*), not from the tool.
    @Test func replayPrintsEveryReadInOrderThenTheHints() throws {
        let trace = try writeTrace("""
            # the driver's first steps on CPU 0
            0 r 0x8
            0 w 0xc 2
            0 r 0x10
            6 r 0x6014
            6 w 0x6004 2802000
            0 w 0x4 0        # set_perf 0 is refused
            0 r 0x4          # set_perf is write-only
            4 w 0x404000 700 # util hint 700 from vCPU 4
            0 r 0x0
            """)
        let result = try CLI.run(["device", "replay", "--topology", "Tests/Fixtures/topology/phone.toml", trace])
        #expect(result.status == 0, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        let little = ExpectedTopologies.phoneLittle
        #expect(Array(lines.prefix(6)) == [
            "line 2: vcpu 0 r cpu0.perftbl_len = \(little.count) (0x\(String(little.count, radix: 16)))",
            "line 4: vcpu 0 r cpu0.perftbl_rd = \(little[2]) (0x\(String(little[2], radix: 16)))",
            "line 5: vcpu 6 r cpu6.perf_domain = 2",
            "line 7: vcpu 0 w cpu0.set_perf 0  [invalid: performance_zero]",
            "line 8: vcpu 0 r cpu0.set_perf = 0  [invalid: read_of_write_only]",
            "line 10: vcpu 0 r cpu0.cur_perf = \(little.last!) (0x\(String(little.last!, radix: 16)))",
        ])
        // Headroom none: big at its max asks util 1024, the whole big domain follows;
        // the util hint goes to the mid domain (vCPUs 4-5).
        #expect(lines.contains("  vcpu 6 (domain 2): util_min=1024 util_max=1024 latency=none cpus=6-7  <- set_perf 2802000 kHz"))
        #expect(lines.contains("  vcpu 7 (domain 2): util_min=1024 util_max=1024 latency=none cpus=6-7"))
        #expect(lines.contains("  vcpu 4 (domain 1): util_min=700 util_max=1024 latency=none cpus=4-5  <- util_hint util 700"))
        #expect(lines.contains("  vcpu 0 (domain 0): util_min=0 util_max=1024 latency=none cpus=0-3"))
        #expect(lines.last == "invalid accesses: performance_zero=1 read_of_write_only=1")
    }

    @Test func replayJSONCarriesTheSameFacts() throws {
        let trace = try writeTrace("0 r 0x8\n6 w 0x6004 2802000\n0 r 0x0 1\n")
        let result = try CLI.run(["device", "replay", "--json", "--topology", "Tests/Fixtures/topology/phone.toml", trace])
        #expect(result.status == 0)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        let reads = try #require(object["reads"] as? [[String: Any]])
        #expect(reads.count == 2)
        #expect(reads[0]["register"] as? String == "cpu0.perftbl_len" && reads[0]["value"] as? Int == 11)
        #expect(reads[1]["invalid"] as? String == "bad_width" && reads[1]["value"] as? Int == 0)
        let hints = try #require(object["hints"] as? [[String: Any]])
        #expect(hints.count == 8)
        #expect(hints[6]["util_min"] as? Int == 1024)
        #expect((hints[6]["last_request"] as? [String: Any])?["performance_khz"] as? Int == 2_802_000)
        #expect((object["invalid"] as? [String: Int]) == ["bad_width": 1])
    }

    @Test func badTraceLinesAreReportedWithTheirNumbersAndExitNonZero() throws {
        let trace = try writeTrace("0 r 0x8\n0 q 0x8\n0 w 0x4\n1 r 0x1008 3 4\n")
        let result = try CLI.run(["device", "replay", "--topology", "Tests/Fixtures/topology/phone.toml", trace])
        #expect(result.status != 0)
        #expect(result.stdout.isEmpty, "nothing is replayed from a bad trace")
        let errors = result.stderr.split(separator: "\n").map(String.init)
        #expect(errors.count == 3)
        #expect(errors[0].hasPrefix("\(trace):2: error: \"q\" is neither r nor w"))
        #expect(errors[1].hasPrefix("\(trace):3: error: a write needs a value"))
        #expect(errors[2].hasPrefix("\(trace):4: error: too many fields for a read"))
    }

    @Test func missingFilesAreNamed() throws {
        let missing = try CLI.run(["device", "replay", "--topology", "Tests/Fixtures/topology/phone.toml", "/nonexistent/trace"])
        #expect(missing.status != 0)
        #expect(missing.stderr.contains("cannot read /nonexistent/trace: No such file or directory"))
        let badTopology = try CLI.run(["device", "replay", "--topology", "/nonexistent/topo.toml", "/dev/null"])
        #expect(badTopology.status != 0)
        #expect(badTopology.stderr.contains("cannot read /nonexistent/topo.toml"))
    }

    @Test func demoNarratesEveryPhaseAndItsTraceReplays() throws {
        let tracePath = CLI.temporaryPath("demo.trace")
        let demo = try CLI.run(["demo", "--write-trace", tracePath])
        #expect(demo.status == 0, "\(demo.stderr)")
        for phase in ["[probe]", "[idle]", "[app launch]", "[touch]", "[scroll]", "[background]", "[misbehaving guest]"] {
            #expect(demo.stdout.contains(phase), "missing \(phase)")
        }
        // The driver learned the embedded phone's three tables and domains.
        #expect(demo.stdout.contains("driver read perftbl_len 11 11 11 11 14 14 17 17, perf_domain 0 0 0 0 1 1 2 2"))
        // Touch input: latency-sensitive boost through the shared page on a big vCPU.
        #expect(demo.stdout.contains("vCPU 6: util_min 819 -> 1024, latency none -> slice=300us"))
        #expect(demo.stdout.contains("== this host (probed from /sys)"))

        let replay = try CLI.run(["device", "replay", "--json", "--topology", "Tests/Fixtures/topology/phone.toml", tracePath])
        #expect(replay.status == 0, "\(replay.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(replay.stdout.utf8)) as? [String: Any])
        let traceText = try String(contentsOfFile: tracePath, encoding: .utf8)
        let readLines = traceText.split(separator: "\n").filter { $0.split(separator: " ").dropFirst().first == "r" }
        #expect((object["reads"] as? [Any])?.count == readLines.count)
    }

    @Test func demoRunsARealGuestWhenKVMIsUsable() throws {
        guard FileManager.default.isReadableFile(atPath: "/dev/kvm") else {
            print("skipped: /dev/kvm is not usable here")
            return
        }
        let demo = try CLI.run(["demo"])
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stdout.contains("driver probe on vCPU 0"))
        #expect(demo.stdout.contains("policy of cpu 6: cpus 6,7, perf_domain 2, 17 entries"))
        #expect(demo.stdout.contains("detached: the daemon restored 8 vCPU threads"))
        #expect(!demo.stdout.contains("falling back"))
    }

    @Test func demoWithoutKVMSaysWhyAndReplays() throws {
        let demo = try CLI.run(["demo", "--kvm-device", "/nonexistent/kvm", "--skip-host"])
        #expect(demo.status == 0, "\(demo.stderr)")
        #expect(demo.stderr.contains("KVM is not usable here"))
        #expect(demo.stdout.contains("falling back to the replay demo"))
        #expect(demo.stdout.contains("[misbehaving guest]"))
    }
}
