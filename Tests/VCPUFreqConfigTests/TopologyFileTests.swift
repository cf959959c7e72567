import Testing
import VCPUFreqCore
@testable import VCPUFreqConfig

@Suite struct TopologyFileTests {
    @Test(arguments: ExpectedTopologies.all)
    func fixtureDecodesToItsTopology(name: String, expected: Topology) throws {
        let (topology, warnings) = try TopologyFile.load(path: Fixtures.topology(name))
        #expect(topology == expected)
        #expect(warnings == [])
    }

    /// Encoding then decoding gives the same topology, for the fixtures and
    /// for variants that exercise every optional key and awkward strings.
    @Test(arguments: ExpectedTopologies.all.map(\.1) + TopologyFileTests.variants)
    func encodeDecodeRoundTrip(topology: Topology) {
        let text = TopologyFile.encode(topology, header: ["written by a test"])
        let (decoded, diagnostics) = TopologyFile.decode(text)
        #expect(diagnostics.filter { $0.severity == .error } == [], "\(text)")
        #expect(decoded == topology, "\(text)")
    }

    static let variants: [Topology] = {
        var pinned = ExpectedTopologies.phone
        pinned.vms[0].pinCPUs = [nil, CPUList([0, 2]), nil, nil, CPUList(4...7), nil, CPUList([6]), nil]
        pinned.vms[0].domains = [0, 0, 1, 1, 2, 2, 3, 3]
        pinned.host.name = "quote \" backslash \\ tab \t newline \n unicode é"
        pinned.host.possibleCPUs = CPUList(0...7)
        pinned.vms.append(
            VMProfile(
                name: "second", vcpuCount: 2, clusters: ["big", "little"], pin: false, utilCap: 512,
                headroom: .schedutil, tableMode: .maxOnly, baseAddress: 0x1_0000_0000,
                policy: PolicySettings(
                    hysteresis: 0, minimumIntervalMicroseconds: 0, boostHoldMilliseconds: 7, boostUtilization: 600,
                    idleDecayMilliseconds: 100, latencyHint: .none, latencySliceMicroseconds: 100_000,
                    latencyNice: 19)))
        var noGovernor = ExpectedTopologies.server
        noGovernor.host.governor = nil
        return [pinned, noGovernor]
    }()

    /// The long table lines of an encoded phone file wrap, and the locator
    /// still finds each element on its own line.
    @Test func encodedTablesWrapAndElementsAreLocated() {
        let text = TopologyFile.encode(ExpectedTopologies.phone)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        let locator = LineLocator(source: text)
        let path = "host.cluster[2].frequencies_khz"
        guard let first = locator.line(of: "\(path)[0]"), let ninth = locator.line(of: "\(path)[8]") else {
            Issue.record("elements not located")
            return
        }
        #expect(ninth == first + 1)
        #expect(lines[first - 1].contains("500000"))
        #expect(lines[ninth - 1].hasPrefix("    1826000"))
    }

    /// broken.toml holds one of each problem; expected lines are counted by hand in the file.
    @Test func brokenFileReportsEveryProblemWithLines() {
        let text = try! TopologyFile.readText(path: Fixtures.topology("broken"))
        let (topology, diagnostics) = TopologyFile.decode(text)
        #expect(topology == nil)
        let found = diagnostics.map { "\($0.line.map(String.init) ?? "-") \($0.severity.rawValue) \($0.keyPath)" }
        #expect(found == [
            "4 error host.governor",
            "6 error host.cluster[0].capacity",  // missing: reported at its table's header
            "9 error host.cluster[0].capacty",
            "10 error host.cluster[0].frequencies_khz[2]",
            "15 error host.cluster[1].capacity",
            "19 error host.cluster[1].frequencies_khz[2]",
            "25 error vm[0].clusters[2]",
            "26 error vm[0].util_cap",
            "29 error vm[0].policy.latency_slice_us",
        ])
        let typo = diagnostics.first { $0.keyPath == "host.cluster[0].capacty" }
        #expect(typo?.message.contains("did you mean \"capacity\"") == true)
        let wrongType = diagnostics.first { $0.keyPath == "host.cluster[1].capacity" }
        #expect(wrongType?.message == "expected an integer, found a string")
        let governor = diagnostics.first { $0.keyPath == "host.governor" }
        #expect(governor?.message.contains("schedutil|performance|powersave") == true)
    }

    @Test(arguments: [
        // (snippet appended to a valid host, key path, message fragment)
        ("[[vm]]\nname = 1\nclusters = [\"c\"]", "vm[0].name", "expected a string, found an integer"),
        ("[[vm]]\nname = \"v\"\nclusters = \"c\"", "vm[0].clusters", "expected an array, found a string"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\npin = 1", "vm[0].pin", "expected true or false"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\nheadroom = \"always\"", "vm[0].headroom", "schedutil|none|auto"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\ntable_mode = \"max\"", "vm[0].table_mode", "table|max-only"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\nbase_address = -4096", "vm[0].base_address", "negative"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\npin_cpus = [\"0-\"]", "vm[0].pin_cpus[0]", "invalid CPU list"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\npin_cpus = [1.5]", "vm[0].pin_cpus[0]", "found a floating-point number"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\ndomains = [\"a\"]", "vm[0].domains[0]", "expected an integer"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\n[vm.policy]\nlatency_hint = \"fast\"", "vm[0].policy.latency_hint", "slice|nice|none"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\n[vm.policy]\nhysterisis = 4", "vm[0].policy.hysterisis", "did you mean \"hysteresis\""),
        ("[[vm]]\nclusters = [\"c\"]", "vm[0].name", "missing key \"name\""),
        ("[vm]\nname = \"v\"", "vm", "expected an array of tables ([[vm]]), found a table"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\npolicy = 3", "vm[0].policy", "expected a table"),
        ("[[vm]]\nname = \"v\"\nclusters = [\"c\"]\n[extra]\nx = 1", "extra", "unknown key \"extra\""),
    ] as [(String, String, String)])
    func wrongValuesAreReportedAtTheirKeyPath(snippet: String, keyPath: String, fragment: String) {
        let text = "[host]\n[[host.cluster]]\nname = \"c\"\ncpus = \"0\"\ncapacity = 1024\nfrequencies_khz = [1]\n" + snippet
        let (topology, diagnostics) = TopologyFile.decode(text)
        #expect(topology == nil)
        let matching = diagnostics.filter { $0.keyPath == keyPath }
        #expect(matching.count == 1, "\(diagnostics)")
        #expect(matching.first?.message.contains(fragment) == true, "\(matching)")
        #expect(matching.first?.line != nil)
    }

    @Test(arguments: [
        ("[host\nname = \"x\"\n", 1),
        ("[host]\nname = \"x\"\ncapacity = \n", 3),
        ("[host]\nname = \"x\"\n\n\nname = \"y\"\n", 5),
        ("[host]\nfrequencies_khz = [1, 2,\n", 2),  // toml++ places end-of-file on the last line with text
    ])
    func syntaxErrorsCarryLineAndColumn(text: String, line: Int) {
        let (topology, diagnostics) = TopologyFile.decode(text)
        #expect(topology == nil)
        #expect(diagnostics.count == 1)
        let diagnostic = diagnostics[0]
        #expect(diagnostic.line == line)
        let column = diagnostic.column ?? 0
        #expect(column >= 1)
        #expect(TopologyFile.format(diagnostic, file: "t.toml").hasPrefix("t.toml:\(line):\(column): error: "))
    }

    /// A value with a decoding error is not reported a second time by check().
    @Test func checkFindingsAboutFailedValuesAreDropped() {
        let text = """
            [host]
            [[host.cluster]]
            name = "c"
            cpus = "0-1x"
            capacity = 1024
            frequencies_khz = [1000]
            [[vm]]
            name = "v"
            clusters = ["c"]
            """
        let (_, diagnostics) = TopologyFile.decode(text)
        #expect(diagnostics.map(\.keyPath) == ["host.cluster[0].cpus"])
        #expect(diagnostics.first?.line == 4)
    }

    @Test func warningsAloneStillGiveATopology() {
        var topology = ExpectedTopologies.phone
        topology.host.clusters[2].capacity = 1000  // no cluster at 1024: a warning
        let (decoded, diagnostics) = TopologyFile.decode(TopologyFile.encode(topology))
        #expect(decoded == topology)
        #expect(diagnostics.map(\.severity) == [.warning])
    }

    @Test func formatNamesFileLineAndKey() {
        let diagnostic = Diagnostic.error("vm[0].util_cap", "util_cap 2048 is outside 0...1024", line: 26)
        #expect(TopologyFile.format(diagnostic, file: "a.toml") == "a.toml:26: error: vm[0].util_cap: util_cap 2048 is outside 0...1024")
        #expect(TopologyFile.format(.warning("", "whole file"), file: "a.toml") == "a.toml: warning: whole file")
    }

    @Test func unreadableFilesSayWhy() {
        #expect(throws: TopologyFileError.self) { try TopologyFile.load(path: "/nonexistent/topology.toml") }
        do {
            _ = try TopologyFile.load(path: "/nonexistent/topology.toml")
        } catch {
            #expect(error.description == "cannot read /nonexistent/topology.toml: No such file or directory")
        }
        do {
            _ = try TopologyFile.load(path: Fixtures.testsDirectory)
        } catch {
            #expect(error.description == "cannot read \(Fixtures.testsDirectory): Is a directory")
        }
    }

    @Test(arguments: [("capacty", "capacity"), ("frequencies", "frequencies_khz"), ("nam", "name"), ("zzzzzz", nil)] as [(String, String?)])
    func typoSuggestions(key: String, suggestion: String?) {
        #expect(TOMLFields.closest(to: key, in: TopologyDecoder.clusterKeys) == suggestion)
    }

    /// The full example in docs/topology.md is a valid file with every key.
    @Test func documentationExampleIsValid() throws {
        let doc = try TopologyFile.readText(path: "\(Fixtures.packageDirectory)/docs/topology.md")
        let start = try #require(doc.range(of: "```toml\n"))
        let end = try #require(doc.range(of: "\n```", range: start.upperBound..<doc.endIndex))
        let (topology, diagnostics) = TopologyFile.decode(String(doc[start.upperBound..<end.lowerBound]))
        #expect(diagnostics == [])
        let keys = TopologyDecoder.hostKeys + TopologyDecoder.clusterKeys + TopologyDecoder.vmKeys + TopologyDecoder.policyKeys
        for key in keys where key != "cluster" && key != "policy" && key != "nominal" {
            #expect(doc[start.upperBound..<end.lowerBound].contains("\n\(key) = "), "example lacks \(key)")
        }
        #expect(topology?.vms.first?.pinCPUs?.last == CPUList([6, 7]))
    }
}
