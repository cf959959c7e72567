import Foundation
import Testing
import VCPUFreqTestSupport
@testable import VCPUFreqCore

@Suite struct CrosvmArgumentsTests {
    static func table(_ values: [Int]) -> String { values.map(String.init).joined(separator: ",") }

    @Test func phone() throws {
        let rendering = try CrosvmArguments.render(SampleTopologies.phone())
        let little = Self.table(SampleTopologies.phoneLittle), mid = Self.table(SampleTopologies.phoneMid), big = Self.table(SampleTopologies.phoneBig)
        let frequencies = (0..<4).map { "\($0)=\(little)" } + (4..<6).map { "\($0)=\(mid)" } + (6..<8).map { "\($0)=\(big)" }
        #expect(rendering.arguments == [
            "--cpus 'num-cores=8,clusters=[[0,1,2,3],[4,5],[6,7]],freq-domains=[[0,1,2,3],[4,5],[6,7]]'",
            "--cpu-affinity 0=0-3:1=0-3:2=0-3:3=0-3:4=4-5:5=4-5:6=6-7:7=6-7",
            // dmips by hand in DeviceTreeTests.phoneValuesByHand
            "--cpu-capacity 0=249,1=249,2=249,3=249,4=620,5=620,6=1024,7=1024",
            "--cpu-frequencies-khz '\(frequencies.joined(separator: ";"))'",
            "--virt-cpufreq-upstream",
        ])
    }

    /// Laptop: per-vCPU domains on the big side. little dmips: [382·2.4/2.0, 383·2.4/2.0) = [458.4, 459.6) → 459.
    @Test func laptopDomainsAndCapacities() throws {
        let rendering = try CrosvmArguments.render(SampleTopologies.laptop())
        #expect(rendering.arguments[0] == "--cpus 'num-cores=6,clusters=[[0,1,2,3],[4,5]],freq-domains=[[0,1,2,3],[4],[5]]'")
        #expect(rendering.arguments[1] == "--cpu-affinity 0=0-3:1=0-3:2=0-3:3=0-3:4=4-7:5=4-7")
        #expect(rendering.arguments[2] == "--cpu-capacity 0=459,1=459,2=459,3=459,4=1024,5=1024")
    }

    @Test func maxOnlyGivesOneEntryTables() throws {
        let rendering = try CrosvmArguments.render(SampleTopologies.server(tableMode: .maxOnly))
        #expect(rendering.arguments[3] == "--cpu-frequencies-khz '" + (0..<16).map { "\($0)=3000000" }.joined(separator: ";") + "'")
        #expect(rendering.notes.contains { $0.contains("max-only") })
    }

    @Test func pinnedSetsAndBaseAddressNotes() throws {
        var topology = SampleTopologies.thisMachine()
        topology.vms[0].pinCPUs = [CPUList([1]), nil]
        topology.vms[0].pin = false
        topology.vms[0].baseAddress = 0x200_0000
        let rendering = try CrosvmArguments.render(topology)
        #expect(rendering.arguments[1] == "--cpu-affinity 0=1:1=0-1")
        #expect(rendering.notes.contains { $0.contains("pin = false") })
        #expect(rendering.notes.contains { $0.contains("0x2000000") })
    }

    /// Parse the values back the way crosvm's parsers split them (cmdline.rs:
    /// parse_cpu_affinity splits on ':' and '=', parse_cpu_btreemap_u32 on ','
    /// and '=', parse_cpu_frequencies on ';', '=' and ','), and compare with the model.
    @Test(arguments: SampleTopologies.all(tableMode: .table))
    func valuesParseLikeCrosvm(topology: Topology) throws {
        let model = try topology.model()
        let arguments = CrosvmArguments.render(model).arguments
        func value(_ flag: String) -> String {
            var text = String(arguments.first { $0.hasPrefix(flag + " ") }!.dropFirst(flag.count + 1))
            if text.hasPrefix("'") { text = String(text.dropFirst().dropLast()) }
            return text
        }
        let affinity = value("--cpu-affinity").split(separator: ":").map { $0.split(separator: "=") }
        #expect(affinity.map { Int($0[0])! } == Array(0..<model.vcpuCount))
        #expect(affinity.map { try! CPUList(parsing: String($0[1])) } == model.vcpus.map(\.hostCPUs))
        let capacity = value("--cpu-capacity").split(separator: ",").map { $0.split(separator: "=") }
        #expect(capacity.map { UInt32($0[1])! } == model.dmipsPerMHz)
        let frequencies = value("--cpu-frequencies-khz").split(separator: ";").map { $0.split(separator: "=") }
        #expect(frequencies.map { $0[1].split(separator: ",").map { UInt32($0)! } } == model.vcpus.map(\.frequenciesKHz))
    }

    @Test func commandLineContinuations() {
        #expect(CrosvmArguments.commandLine(["--a 1", "--b", "--c 'x;y'"]) == "--a 1 \\\n--b \\\n--c 'x;y'")
        #expect(CrosvmArguments.shellQuoted("it's") == "'it'\\''s'")
        #expect(CrosvmArguments.shellQuoted("0=0-3:1=4") == "0=0-3:1=4")
    }

    /// The shell itself reads each quoted word back. A Character is a grapheme
    /// cluster: "'" followed by a combining mark is one (it went unescaped and
    /// closed the quote), and a prepended letter (U+0D4E) joins the ";" after
    /// it into one "letter" (it went bare).
    @Test(arguments: ["it's", "'\u{301}; echo no", "\u{D4E};echo", "a b", "é", "", "x\r\ny", "$(id)", "0=0-3:1=4"])
    func theShellReadsQuotedWordsBack(value: String) throws {
        let shell = Process()
        shell.executableURL = URL(fileURLWithPath: "/bin/sh")
        shell.arguments = ["-c", "printf %s " + CrosvmArguments.shellQuoted(value)]
        let output = try ProgramOutput.of(shell)
        #expect(output.status == 0 && Array(output.stdout) == Array(value.utf8),
                "\(CrosvmArguments.shellQuoted(value).debugDescription) printed \(output.standardOutput.debugDescription)")
    }
}
