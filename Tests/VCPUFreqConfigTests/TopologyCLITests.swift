import Foundation
import Testing
import VCPUFreqCore
@testable import VCPUFreqConfig

/// Runs the built `vcpufreq` binary (`swift build` runs before the tests).
enum CLI {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// `prefix` runs the binary through another program (`setpriv --reuid=65534 ...`).
    static func run(_ arguments: [String], prefix: [String] = []) throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: Fixtures.binary) else {
            throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "\(Fixtures.binary) is missing: run `swift build` first"])
        }
        let run = try ProgramRun.run(prefix + [Fixtures.binary] + arguments)
        return Result(status: run.status, stdout: run.stdout, stderr: run.stderr)
    }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-\(UUID().uuidString)-\(name)").path
    }
}

@Suite(.serialized) struct TopologyCLITests {
    @Test func checkCleanFilePrintsSummaryAndExitsZero() throws {
        let result = try CLI.run(["topology", "check", "Tests/Fixtures/topology/laptop.toml"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "Tests/Fixtures/topology/laptop.toml: OK, 0 warnings; 2 clusters, 1 VM profile")
        #expect(lines.contains { $0.hasPrefix("vm \"crostini\": 6 vCPUs, 3 domains") })
        #expect(lines.contains { $0.hasPrefix("  vCPUs 0-3 -> little (capacity 382") && $0.hasSuffix("domain 0, pinned to CPUs 0-3") })
        #expect(lines.contains { $0.hasPrefix("  vCPU 5 -> big") && $0.hasSuffix("domain 2, pinned to CPUs 6-7") })
    }

    @Test func checkBrokenFileListsEveryErrorAndExitsOne() throws {
        let file = "Tests/Fixtures/topology/broken.toml"
        let result = try CLI.run(["topology", "check", file])
        #expect(result.status == 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 10)
        #expect(lines.first == "\(file):4: error: host.governor: \"turbo\" is not one of schedutil|performance|powersave|ondemand|conservative|userspace|none")
        #expect(lines.contains("\(file):9: error: host.cluster[0].capacty: unknown key \"capacty\"; did you mean \"capacity\"?"))
        #expect(lines.contains("\(file):26: error: vm[0].util_cap: util_cap 2048 is outside 0...1024"))
        #expect(lines.last == "\(file): 9 errors, 0 warnings")
    }

    @Test func checkWarningsOnlyExitsZero() throws {
        var topology = ExpectedTopologies.phone
        topology.host.clusters[2].capacity = 1000
        let path = CLI.temporaryPath("warn.toml")
        try TopologyFile.encode(topology).write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try CLI.run(["topology", "check", path])
        #expect(result.status == 0)
        #expect(result.stdout.contains("\(path):")
            && result.stdout.contains(": warning: host.cluster: no cluster has capacity 1024"))
    }

    @Test func syntaxErrorHasLineAndColumn() throws {
        let path = CLI.temporaryPath("syntax.toml")
        try "[host]\nname = \"x\"\ncapacity = \n".write(toFile: path, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let result = try CLI.run(["topology", "check", path])
        #expect(result.status == 1)
        #expect(result.stdout.hasPrefix("\(path):3:"), "\(result.stdout)")
        #expect(result.stdout.contains(": error: "))
    }

    /// The fuzz-found file toml++ 3.4.0 (inside TOMLKit) asserts on — a `}`
    /// where an array value belongs — used to abort the process; now it is
    /// refused with its file, line and column, and exit status 1.
    @Test func checkOfTheArrayTerminatorReproducerExitsOneNamingTheFile() throws {
        let file = "Tests/Fuzz/regressions/topology/toml-array-value-terminator"
        let result = try CLI.run(["topology", "check", file])
        #expect(result.status == 1, "\(result.stderr)")
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "\(file):9:14: error: array: expected a value, ',' or ']', found '}'", "\(result.stdout)")
        #expect(lines.last == "\(file): 1 error, 0 warnings", "\(result.stdout)")
    }

    @Test(arguments: [
        (["topology", "check", "/nonexistent.toml"], "cannot read /nonexistent.toml: No such file or directory"),
        (["topology", "dt", "/nonexistent.toml"], "cannot read /nonexistent.toml: No such file or directory"),
        (["topology", "dt", "Tests/Fixtures/topology/phone.toml", "--base", "0x1001"], "--base 0x1001 is not 4 KiB aligned"),
        (["topology", "dt", "Tests/Fixtures/topology/phone.toml", "--base", "nowhere"], "--base \"nowhere\" is not an address"),
        (["topology", "dt", "Tests/Fixtures/topology/phone.toml", "--base", "0xfffffffffffff000"], "--base 0xfffffffffffff000: the device would run past"),
        (["topology", "crosvm-args", "Tests/Fixtures/topology/phone.toml", "--vm", "nope"], "no VM profile named \"nope\" (profiles: android)"),
        (["topology", "policies", "Tests/Fixtures/topology/phone.toml", "--vm", "nope"], "no VM profile named \"nope\" (profiles: android)"),
        (["topology", "policies", "/nonexistent.toml"], "cannot read /nonexistent.toml: No such file or directory"),
        (["topology", "probe", "--sysfs-root", "/nonexistent"], "cannot read /nonexistent/devices/system/cpu: No such file or directory"),
    ])
    func errorsNameTheFileOrFlag(arguments: [String], message: String) throws {
        let result = try CLI.run(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test func invalidFileForRenderingPrintsDiagnostics() throws {
        let result = try CLI.run(["topology", "crosvm-args", "Tests/Fixtures/topology/broken.toml"])
        #expect(result.status == 1)
        #expect(result.stdout == "")
        #expect(result.stderr.contains("Tests/Fixtures/topology/broken.toml:26: error: vm[0].util_cap"))
    }

    /// probe on a fixture tree writes a file that check accepts and decodes to the probed topology.
    @Test func probeWritesAFileThatChecks() throws {
        let path = CLI.temporaryPath("probe.toml")
        defer { try? FileManager.default.removeItem(atPath: path) }
        let probe = try CLI.run(["topology", "probe", "--sysfs-root", Fixtures.sysfs("phone-4-2-2"), "--name", "phone", "-o", path])
        #expect(probe.status == 0)
        #expect(probe.stdout == "")
        let (topology, _) = try TopologyFile.load(path: path)
        #expect(topology.host.clusters.map(\.name) == ["little", "mid", "big"])
        #expect(topology.host.name == "phone")
        let check = try CLI.run(["topology", "check", path])
        #expect(check.status == 0)
    }

    /// probe on this machine's shape says nominal on stderr and marks the table.
    @Test func probeWithoutCpufreqSaysNominal() throws {
        let root = Fixtures.sysfs("this-machine")
        let result = try CLI.run(["topology", "probe", "--sysfs-root", root, "--cpuinfo", root + "/cpuinfo"])
        #expect(result.status == 0)
        #expect(result.stderr.contains("note: no cpufreq driver"))
        let (topology, _) = TopologyFile.decode(result.stdout)
        #expect(topology?.host.clusters.map(\.isNominal) == [true])
        #expect(topology?.host.clusters.first?.frequenciesKHz == [1_350_000, 2_700_000])
        #expect(topology?.host.governor == HostGovernor.none)
    }

    @Test func dtOutputCompilesAndHonoursBase() throws {
        let result = try CLI.run(["topology", "dt", "Tests/Fixtures/topology/laptop.toml", "--base", "0x30000000"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("cpufreq@30000000 {"))
        #expect(result.stdout.contains("reg = <0x0 0x30000000 0x0 0x6000>;"))
    }

    @Test func crosvmArgsPrintsOneFlagPerLine() throws {
        let result = try CLI.run(["topology", "crosvm-args", "Tests/Fixtures/topology/phone.toml"])
        #expect(result.status == 0)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 5)
        #expect(lines.dropLast().allSatisfy { $0.hasSuffix(" \\") })
        #expect(lines.last == "--virt-cpufreq-upstream")
        #expect(lines[2] == "--cpu-capacity 0=249,1=249,2=249,3=249,4=620,5=620,6=1024,7=1024 \\")
        #expect(result.stderr.contains("note: --cpu-capacity is capacity-dmips-mhz"))
    }

    /// The JSON the guest proofs hold a real guest's sysfs against: keys and values as documented.
    @Test func policiesPrintsTheGuestsPoliciesAsJSON() throws {
        let result = try CLI.run(["topology", "policies", "Tests/Fixtures/topology/phone.toml"])
        #expect(result.status == 0)
        let document = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(document["vm"] as? String == "android")
        #expect(document["vcpus"] as? Int == 8)
        #expect(document["table_mode"] as? String == "table")
        let policies = try #require(document["policies"] as? [[String: Any]])
        #expect(policies.map { $0["cpu"] as? Int } == [0, 4, 6])
        #expect(policies.map { $0["cpus"] as? [Int] } == [[0, 1, 2, 3], [4, 5], [6, 7]])
        #expect(policies.map { $0["max_khz"] as? Int } == [1_803_000, 2_253_000, 2_802_000])
        #expect(policies.map { $0["min_khz"] as? Int } == [300_000, 400_000, 500_000])
        #expect((policies[0]["frequencies_khz"] as? [Int])?.count == 11)
    }

    @Test func dtSCMIHasNoMMIOAndRefusesABase() throws {
        let result = try CLI.run(["topology", "dt", "Tests/Fixtures/topology/phone.toml", "--scmi"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("compatible = \"arm,scmi-virtio\";") && result.stdout.contains("clocks = <&scmi_dvfs 2>;"))
        #expect(!result.stdout.contains("virtual-cpufreq"))
        let withBase = try CLI.run(["topology", "dt", "Tests/Fixtures/topology/phone.toml", "--scmi", "--base", "0x30000000"])
        #expect(withBase.status != 0 && withBase.stderr.contains("--base"))
    }

    @Test func qemuArgsRendersWordsMachineOptionsAndRefusesBadFlags() throws {
        let lines = try CLI.run([
            "topology", "qemu-args", "Tests/Fixtures/topology/laptop.toml", "--socket", "/tmp/s p.sock", "--transport", "pci", "--format", "lines",
        ])
        #expect(lines.status == 0)
        let words = lines.stdout.split(separator: "\n").map(String.init)
        #expect(words.contains("socket,id=vcpufreq-scmi,path=/tmp/s p.sock") && words.last == "vhost-user-scmi-pci,chardev=vcpufreq-scmi")
        #expect(lines.stderr.contains("note: QEMU writes no SCMI node"))
        let shell = try CLI.run(["topology", "qemu-args", "Tests/Fixtures/topology/laptop.toml", "--socket", "/tmp/s p.sock"])
        #expect(shell.stdout.contains("-chardev 'socket,id=vcpufreq-scmi,path=/tmp/s p.sock' \\\n"))
        let machine = try CLI.run(["topology", "qemu-args", "Tests/Fixtures/topology/laptop.toml", "--machine-only", "--format", "lines", "--accel", "tcg"])
        #expect(machine.status == 0 && machine.stderr == "")
        #expect(!machine.stdout.contains("chardev") && !machine.stdout.contains("-device") && machine.stdout.contains("tcg\n"))
        for bad in [["--memory-mib", "1"], ["--transport", "usb"], ["--device", "virtio-gpu"], ["--vm", "nope"]] {
            let run = try CLI.run(["topology", "qemu-args", "Tests/Fixtures/topology/laptop.toml"] + bad)
            #expect(run.status != 0 && run.stderr.contains(bad[0] == "--vm" ? "nope" : bad[0]), "\(bad): \(run.stderr)")
        }
    }

    @Test func crosvmArgsSCMI() throws {
        let result = try CLI.run(["topology", "crosvm-args", "Tests/Fixtures/topology/phone.toml", "--scmi"])
        #expect(result.status == 0)
        #expect(result.stdout.split(separator: "\n").last == "--vhost-user type=scmi,socket=/run/vcpufreq/android-scmi.sock")
        let noSCMI = try CLI.run(["topology", "crosvm-args", "Tests/Fixtures/topology/phone.toml", "--socket", "/s"])
        #expect(noSCMI.status != 0 && noSCMI.stderr.contains("--socket needs --scmi"))
    }

    /// The embedded topology checks and renders in every mode (scripts/test-scmi-guest's default).
    @Test func defaultPrintsTheEmbeddedTopology() throws {
        let result = try CLI.run(["topology", "default"])
        #expect(result.status == 0)
        let (topology, diagnostics) = TopologyFile.decode(result.stdout)
        #expect(diagnostics.filter { $0.severity == .error }.isEmpty)
        let model = try #require(topology).model()
        #expect(model.domains == [[0, 1, 2, 3], [4, 5], [6, 7]])
    }

    @Test func helpListsTheSubcommands() throws {
        let result = try CLI.run(["topology", "--help"])
        #expect(result.status == 0)
        for name in ["probe", "check", "dt", "crosvm-args", "qemu-args", "policies", "default"] {
            #expect(result.stdout.contains("  \(name) "), "\(name) missing from help")
        }
    }
}

@Suite struct DeviceTreeExampleTests {
    /// dt/examples/*.dts are the renderer's output for the fixture files; this
    /// fails when the renderer changes and the examples were not regenerated
    /// (`vcpufreq topology dt Tests/Fixtures/topology/NAME.toml -o dt/examples/NAME.dts`).
    @Test(arguments: ["phone", "laptop", "server"])
    func examplesAreUpToDate(name: String) throws {
        let (topology, _) = try TopologyFile.load(path: Fixtures.topology(name))
        let rendered = try DeviceTree.render(topology)
        let committed = try TopologyFile.readText(path: "\(Fixtures.packageDirectory)/dt/examples/\(name).dts")
        #expect(rendered == committed, "dt/examples/\(name).dts is stale: regenerate it with `vcpufreq topology dt Tests/Fixtures/topology/\(name).toml -o dt/examples/\(name).dts`")
    }

    @Test func scmiExampleIsUpToDate() throws {
        let (topology, _) = try TopologyFile.load(path: Fixtures.topology("phone"))
        let rendered = try DeviceTree.render(topology, device: .scmi)
        let committed = try TopologyFile.readText(path: "\(Fixtures.packageDirectory)/dt/examples/phone-scmi.dts")
        #expect(rendered == committed, "dt/examples/phone-scmi.dts is stale: regenerate it with `vcpufreq topology dt Tests/Fixtures/topology/phone.toml --scmi -o dt/examples/phone-scmi.dts`")
    }
}
