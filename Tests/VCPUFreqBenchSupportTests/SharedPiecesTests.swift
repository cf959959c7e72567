import Foundation
import Testing
import VCPUFreqConfig

@testable import VCPUFreqBenchSupport

/// The pieces every benchmark shares, against hand-worked values.
@Suite struct SharedPiecesTests {
    // MARK: Machine description

    static let doorbellShape = """
        {"buildConfiguration":"release","clockSource":"tsc","cpuModel":"Intel(R) Xeon(R) Processor","isVirtualMachine":true,
         "kernel":"6.18.44-fc-v595","kvmFlavour":"PVM","onlineCPUs":2,"swiftVersion":"6.2"}
        """
    static let daemonShape = """
        {"cpuModel":"Intel(R) Xeon(R) Processor","kernel":"6.18.44-fc-v595","kvm":"/dev/kvm is PVM (kvm_pvm: no VMX/SVM in this VM)",
         "onlineCPUList":"0-1","onlineCPUs":2,"virtualized":true}
        """

    @Test func bothFormerShapesDecodeAndRenderTheirOldLines() throws {
        let doorbell = try JSONDecoder().decode(MachineDescription.self, from: Data(Self.doorbellShape.utf8))
        #expect(doorbell.summary == "Intel(R) Xeon(R) Processor, 2 CPUs (itself a VM), Linux 6.18.44-fc-v595, KVM PVM, "
            + "clocksource tsc, release build")
        let daemon = try JSONDecoder().decode(MachineDescription.self, from: Data(Self.daemonShape.utf8))
        #expect(daemon.kvmFlavour == "PVM" && daemon.hasKVMDevice && daemon.isVirtualMachine)
        #expect(daemon.summaryWithCPUList == "Intel(R) Xeon(R) Processor, 2 CPUs (0-1), Linux 6.18.44-fc-v595, itself a VM; "
            + "/dev/kvm is PVM (kvm_pvm: no VMX/SVM in this VM)")
        let roundTrip = try JSONDecoder().decode(MachineDescription.self, from: JSONEncoder().encode(daemon))
        #expect(roundTrip == daemon)
    }

    @Test(arguments: [
        ("no /dev/kvm", "unknown", false), ("/dev/kvm with VMX", "VMX", true), ("/dev/kvm with SVM", "SVM", true),
        ("/dev/kvm (kind unknown)", "unknown", true),
    ] as [(String, String, Bool)])
    func kvmInWordsMapsToAFlavour(words: String, flavour: String, device: Bool) throws {
        let json = Self.daemonShape.replacingOccurrences(of: "/dev/kvm is PVM (kvm_pvm: no VMX/SVM in this VM)", with: words)
        let machine = try JSONDecoder().decode(MachineDescription.self, from: Data(json.utf8))
        #expect(machine.kvmFlavour == flavour && machine.hasKVMDevice == device)
        #expect(machine.kvmDescription == words)
    }

    @Test func thisMachineIsDescribed() {
        let machine = MachineDescription.current()
        #expect(machine.onlineCPUs >= 1 && !machine.kernel.isEmpty && !machine.onlineCPUList.isEmpty)
        #expect(MachineDescription.loadAverages().count == 3)
        #expect((MachineDescription.uptimeSeconds() ?? 0) > 0)
    }

    // MARK: Numbers

    @Test(arguments: [
        (0.0181, "0.0181"), (7.27, "7.27"), (17.64, "17.6"), (133.4, "133"), (0, "0"), (-2.5, "-2.50"),
        (Double.nan, "—"), (0.000292, "0.000292"),
    ] as [(Double, String)])
    func significantDigits(value: Double, text: String) {
        #expect(NumberFormat.significant(value) == text)
    }

    @Test func decimalsAsPrintf() {
        #expect(NumberFormat.decimals(1.005, 1) == "1.0")
        #expect(NumberFormat.decimals(Double?.none, 2) == "—")
        #expect(NumberFormat.decimals(.infinity, 2) == "—")
        #expect(NumberFormat.fixed(2.345, 2) == "2.35" || NumberFormat.fixed(2.345, 2) == "2.34")
        #expect(NumberFormat.fixed(-0.0001, 2) == "0.00")
    }

    // MARK: README sections and files

    @Test func aReadmeSectionIsReplacedBetweenItsMarkersOnly() {
        let section = ReadmeSection(begin: "<!-- x:begin -->", end: "<!-- x:end -->")
        let readme = "intro\n<!-- x:begin -->\nold\n<!-- x:end -->\ntail\n"
        #expect(section.replacing(in: readme, with: "new\n") == "intro\n<!-- x:begin -->\nnew\n<!-- x:end -->\ntail\n")
        #expect(section.replacing(in: "no markers", with: "new") == nil)
        #expect(section.replacing(in: "<!-- x:end --> <!-- x:begin -->", with: "new") == nil)
    }

    @Test func filesAreWrittenAndTheJSONReadsBack() throws {
        let directory = NSTemporaryDirectory() + "bench-support-" + UUID().uuidString + "/nested"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try ResultsFiles.write(
            ResultsFiles.Run(baseName: "x", json: ResultsFiles.encode(["b": 2, "a": 1]), markdown: "# x\n", svg: "<svg/>"),
            to: directory)
        #expect(written.map { URL(fileURLWithPath: $0).lastPathComponent } == ["x.md", "x.json", "x.svg"])
        #expect(try ResultsFiles.decode([String: Int].self, from: directory + "/x.json") == ["a": 1, "b": 2])
        let text = try String(contentsOfFile: directory + "/x.json", encoding: .utf8)
        #expect(text.firstRange(of: "\"a\"")!.lowerBound < text.firstRange(of: "\"b\"")!.lowerBound, "keys sorted")
        let noChart = try ResultsFiles.write(ResultsFiles.Run(baseName: "y", json: Data("{}".utf8), markdown: ""), to: directory)
        #expect(noChart.count == 2)
    }

    @Test func svgTextIsEscaped() {
        #expect(SVG.escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;")
        #expect(SVG.text(1, 2.25, "<x>", anchor: "end") == "<text x=\"1.0\" y=\"2.3\" text-anchor=\"end\">&lt;x&gt;</text>\n"
            || SVG.text(1, 2.25, "<x>", anchor: "end") == "<text x=\"1.0\" y=\"2.2\" text-anchor=\"end\">&lt;x&gt;</text>\n")
    }

    // MARK: Topology file

    @Test func theTopologyFileIsValidTOMLWithTheProfilesAsked() throws {
        let file = BenchTopologyFile(
            comment: "test", hostName: "h \"q\"", hostCPUs: "0-1", clusterName: "c", clusterCPUs: "0-1", capacity: 1024,
            frequenciesKHz: [1_000_000, 2_000_000],
            profiles: [
                .init(name: "a", vcpus: 2, comment: "first", keys: [("clusters", .strings(["c", "c"])), ("pin", .boolean(false))],
                      policy: [("hysteresis", .integer(0)), ("kick_mode", .string("never"))]),
                .init(name: "b", vcpus: 1, keys: [("clusters", .strings(["c"])), ("domains", .integers([0]))], policy: []),
            ])
        let (topology, diagnostics) = TopologyFile.decode(file.text)
        let decoded = try #require(topology, "\(diagnostics)")
        #expect(decoded.host.name == "h \"q\"")
        #expect(decoded.host.clusters.map(\.frequenciesKHz) == [[1_000_000, 2_000_000]])
        let a = try #require(decoded.profile(named: "a"))
        #expect(a.vcpuCount == 2 && !a.pin && a.policy.hysteresis == 0 && a.policy.kickMode == .never)
        #expect(decoded.profile(named: "b")?.vcpuCount == 1)
        #expect(BenchTopologyFile.cpuList(count: 1) == "0" && BenchTopologyFile.cpuList(count: 4) == "0-3")
    }

    // MARK: Hogs and accounting

    @Test func hogsRunPinnedAndBurnCPUUntilStopped() throws {
        let hogs = try CPUHogs(cpus: [0], perCPU: 2, name: "support-test")
        #expect(hogs.cpus == [0, 0])
        let tids = hogs.threadIDs
        #expect(tids.count == 2)
        usleep(50_000)
        let burnt = tids.map { ProcessAccounting.threadTime(pid: nil, tid: $0).runNanoseconds }
        #expect(burnt.allSatisfy { $0 > 0 }, "each hog ran: \(burnt)")
        #expect(Set(tids).isSubset(of: ProcessAccounting.threads(of: getpid())))
        hogs.stop()
        // A hog has left its loop when stop returns; its thread exits right after.
        var waited = 0
        while !Set(tids).isDisjoint(with: ProcessAccounting.threads(of: getpid())), waited < 1000 {
            usleep(1000)
            waited += 1
        }
        #expect(Set(tids).isDisjoint(with: ProcessAccounting.threads(of: getpid())), "the hogs ended")
    }
}
