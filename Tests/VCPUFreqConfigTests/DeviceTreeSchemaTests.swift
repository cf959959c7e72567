import Foundation
import Testing
import VCPUFreqConfig
import VCPUFreqCore
import VCPUFreqTestSupport

/// A program's exit status and output (run from the package directory).
struct ProgramRun {
    var status: Int32
    var stdout: String
    var stderr: String

    static func run(_ command: [String], directory: String = Fixtures.packageDirectory) throws -> ProgramRun {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let run = try ProgramOutput.of(process)
        return ProgramRun(status: run.status, stdout: run.standardOutput, stderr: run.standardError)
    }
}

/// dtschema's tools and the processed schemas, as `scripts/dt-schema` prepares
/// them (cached under /var/cache/vcpufreq/dtschema; the first run installs and
/// processes, later ones only hash our binding).
struct DTSchema {
    var dtValidate: String
    var dtDocValidate: String
    var dtExtractExample: String
    /// Core schemas + the kernel's bindings + ours.
    var schema: String
    /// Core schemas + the kernel's own cpufreq/qemu,virtual-cpufreq.yaml.
    var upstreamSchema: String
    var bindings: String

    struct Failure: Error, CustomStringConvertible { var description: String }

    static let prepared: Result<DTSchema, Failure> = {
        do {
            let run = try ProgramRun.run(["\(Fixtures.packageDirectory)/scripts/dt-schema"])
            guard run.status == 0 else { return .failure(Failure(description: "scripts/dt-schema failed (\(run.status)):\n\(run.stderr)")) }
            var values: [String: String] = [:]
            for line in run.stdout.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
            guard let validate = values["dt_validate"], let doc = values["dt_doc_validate"], let extract = values["dt_extract_example"],
                let schema = values["schema"], let upstream = values["upstream_schema"], let bindings = values["bindings"]
            else { return .failure(Failure(description: "scripts/dt-schema printed no paths:\n\(run.stdout)")) }
            return .success(DTSchema(dtValidate: validate, dtDocValidate: doc, dtExtractExample: extract, schema: schema, upstreamSchema: upstream, bindings: bindings))
        } catch {
            return .failure(Failure(description: "scripts/dt-schema: \(error)"))
        }
    }()

    /// Compiles source to a blob beside it; dtc's warnings are failures too.
    static func compile(_ source: String, name: String, in directory: String, dtcFlags: [String] = []) throws -> String {
        let dts = "\(directory)/\(name).dts", dtb = "\(directory)/\(name).dtb"
        try source.write(toFile: dts, atomically: true, encoding: .utf8)
        let run = try ProgramRun.run(["/usr/bin/dtc", "-I", "dts", "-O", "dtb"] + dtcFlags + ["-o", dtb, dts])
        #expect(run.status == 0 && run.stderr == "", "dtc \(name): \(run.stderr)")
        return dtb
    }

    /// One dt-validate run over `dtbs`: each diagnostic's text (dt-validate exits 0 either way).
    func validate(_ dtbs: [String], schema: String, limit: String? = nil) throws -> [String] {
        let json = CLI.temporaryPath("dt-validate.json")
        defer { try? FileManager.default.removeItem(atPath: json) }
        let run = try ProgramRun.run([dtValidate, "-s", schema, "--json-output", json] + (limit.map { ["-l", $0] } ?? []) + dtbs)
        #expect(run.status == 0, "dt-validate: \(run.stderr)")
        let data = try Data(contentsOf: URL(fileURLWithPath: json))
        let diagnostics = try #require(try JSONSerialization.jsonObject(with: data) as? [[String: Any]])
        return diagnostics.map { ($0["formatted"] as? String) ?? "\($0["file"] ?? ""): \($0["message"] ?? "")" }
    }
}

/// Every device tree `vcpufreq topology dt` can render, validated by
/// dt-validate (dtschema) against dtschema's core schemas, the kernel's
/// bindings and ours (dt/bindings), and its qemu,virtual-cpufreq node against
/// the kernel's own binding of it too.
@Suite(.serialized) struct DeviceTreeSchemaTests {
    /// A rendering: a topology file, a VM profile, a renderer mode.
    struct Rendering: CustomStringConvertible {
        var name: String
        var file: String
        var vm: String
        var mode: [String]
        var description: String { name }
    }

    /// Renderer modes `topology dt` offers: the upstream tree, plus each flag
    /// of this list its help mentions (`--scmi` renders the SCMI fragment).
    static func modes() throws -> [[String]] {
        let help = try CLI.run(["topology", "dt", "--help"]).stdout
        return [[]] + ["--scmi"].filter { help.contains($0) }.map { [$0] }
    }

    /// Every fixture topology file (with each of its VM profiles) and the file
    /// `topology probe` writes for each sysfs fixture tree, in every mode.
    static func renderings(into directory: String) throws -> [Rendering] {
        var files: [(String, String)] = []
        let topologyDirectory = "\(Fixtures.testsDirectory)/Fixtures/topology"
        for name in try FileManager.default.contentsOfDirectory(atPath: topologyDirectory).sorted()
        where name.hasSuffix(".toml") && name != "broken.toml" {
            files.append((String(name.dropLast(5)), "\(topologyDirectory)/\(name)"))
        }
        let sysfsDirectory = "\(Fixtures.testsDirectory)/Fixtures/sysfs"
        for name in try FileManager.default.contentsOfDirectory(atPath: sysfsDirectory).sorted()
        where FileManager.default.fileExists(atPath: "\(sysfsDirectory)/\(name)/devices") {
            let output = "\(directory)/probed-\(name).toml"
            let probe = try CLI.run(["topology", "probe", "--sysfs-root", "\(sysfsDirectory)/\(name)", "--name", name, "-o", output])
            #expect(probe.status == 0, "probe \(name): \(probe.stderr)")
            files.append(("probed-\(name)", output))
        }
        var renderings: [Rendering] = []
        let modes = try modes()
        for (name, file) in files {
            let (topology, _) = try TopologyFile.load(path: file)
            for vm in topology.vms.map(\.name) {
                for mode in modes {
                    let suffix = mode.isEmpty ? "" : "-" + mode.joined().replacingOccurrences(of: "-", with: "")
                    renderings.append(Rendering(name: "\(name)-\(vm)\(suffix)", file: file, vm: vm, mode: mode))
                }
            }
        }
        return renderings
    }

    @Test func everyRenderedTreeValidates() throws {
        let tools = try DTSchema.prepared.get()
        let directory = CLI.temporaryPath("dt")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let renderings = try Self.renderings(into: directory)
        // 4 topology files and 10 sysfs trees at the time of writing: a shrinking list is a bug.
        #expect(renderings.count >= 14, "\(renderings)")
        var all: [String] = [], upstream: [String] = []
        for rendering in renderings {
            let run = try CLI.run(["topology", "dt", rendering.file, "--vm", rendering.vm] + rendering.mode)
            #expect(run.status == 0, "\(rendering): \(run.stderr)")
            let dtb = try DTSchema.compile(run.stdout, name: rendering.name, in: directory)
            all.append(dtb)
            if rendering.mode.isEmpty {
                #expect(run.stdout.contains("compatible = \"qemu,virtual-cpufreq\";"), "\(rendering)")
                upstream.append(dtb)
            } else if rendering.mode == ["--scmi"] {
                // The SCMI tree must not describe virtual-cpufreq: with nothing behind it the guest aborts.
                #expect(run.stdout.contains("compatible = \"arm,scmi-virtio\";") && !run.stdout.contains("qemu,virtual-cpufreq"), "\(rendering)")
            }
        }
        let diagnostics = try tools.validate(all, schema: tools.schema)
        #expect(diagnostics == [], "\(diagnostics.joined(separator: "\n"))")
        let upstreamDiagnostics = try tools.validate(upstream, schema: tools.upstreamSchema, limit: "cpufreq/qemu,virtual-cpufreq")
        #expect(upstreamDiagnostics == [], "\(upstreamDiagnostics.joined(separator: "\n"))")
    }

    /// `make dt_binding_check` for our binding: the meta-schema accepts it,
    /// and its examples validate against it.
    @Test func bindingPassesTheMetaSchemaAndItsExamplesValidate() throws {
        let tools = try DTSchema.prepared.get()
        let binding = "\(tools.bindings)/cpufreq/qemu,virtual-cpufreq.yaml"
        let doc = try ProgramRun.run([tools.dtDocValidate, "-u", tools.bindings, binding])
        #expect(doc.status == 0 && doc.stdout == "" && doc.stderr == "", "\(doc.stdout)\(doc.stderr)")
        let examples = try ProgramRun.run([tools.dtExtractExample, binding])
        #expect(examples.status == 0, "\(examples.stderr)")
        #expect(examples.stdout.contains("vcpufreq,shared-page"))
        let directory = CLI.temporaryPath("dt-example")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // dt-extract-example wraps the examples in a node with #address-cells and no reg or ranges.
        let dtb = try DTSchema.compile(examples.stdout, name: "example", in: directory, dtcFlags: ["-Wno-avoid_unnecessary_addr_size"])
        let diagnostics = try tools.validate([dtb], schema: tools.schema)
        #expect(diagnostics == [], "\(diagnostics.joined(separator: "\n"))")
    }

    static let hasQEMU = FileManager.default.isExecutableFile(atPath: "/usr/bin/qemu-system-aarch64")

    /// What the guest of scripts/test-scmi-guest boots: QEMU 10's own `virt`
    /// tree, dumped with the machine options `topology qemu-args` renders,
    /// with the `--scmi` fragment merged in (scripts/lib/qemu-arm64.sh).
    /// QEMU's nodes have diagnostics of their own (pl011@..., intc@...), so
    /// the schemas of what we add are the ones checked: the SCMI binding and
    /// the cpus bindings. One cpu-map, no virtual-cpufreq node.
    @Test(.enabled(if: hasQEMU, "needs qemu-system-aarch64 (scripts/setup installs it)"))
    func scmiFragmentMergedIntoQEMUsTreeValidates() throws {
        let tools = try DTSchema.prepared.get()
        let directory = CLI.temporaryPath("dt-merged")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = "Tests/Fixtures/topology/phone.toml"
        let fragment = try CLI.run(["topology", "dt", file, "--scmi", "-o", "\(directory)/scmi.dts"])
        #expect(fragment.status == 0, "\(fragment.stderr)")
        let machine = try CLI.run(["topology", "qemu-args", file, "--machine-only", "--format", "lines", "--accel", "tcg", "--cpu", "max"])
        #expect(machine.status == 0, "\(machine.stderr)")
        let words = machine.stdout.split(separator: "\n").map(String.init)
        let merge = try ProgramRun.run(
            ["/bin/bash", "-c", "source scripts/lib/qemu-arm64.sh && qemu_arm64_dtb \"$@\"", "merge", "\(directory)/guest.dtb", "\(directory)/scmi.dts"] + words)
        #expect(merge.status == 0, "\(merge.stderr)")
        let decompiled = try ProgramRun.run(["/usr/bin/dtc", "-q", "-I", "dtb", "-O", "dts", "\(directory)/guest.dtb"])
        let merged = decompiled.stdout
        #expect(merged.components(separatedBy: "cpu-map {").count == 2, "one cpu-map")
        #expect(!merged.contains("qemu,virtual-cpufreq") && merged.contains("arm,scmi-virtio"))
        for limit in ["firmware/arm,scmi", "cpus"] {
            let diagnostics = try tools.validate(["\(directory)/guest.dtb"], schema: tools.schema, limit: limit)
            #expect(diagnostics == [], "\(limit): \(diagnostics.joined(separator: "\n"))")
        }
    }

    /// The validator is not vacuous: each broken variant of a rendered tree
    /// gets the diagnostic its mistake deserves, from the schema that owns it.
    @Test func brokenTreesAreCaught() throws {
        let tools = try DTSchema.prepared.get()
        let directory = CLI.temporaryPath("dt-broken")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let source = try CLI.run(["topology", "dt", "Tests/Fixtures/topology/phone.toml"]).stdout
        let variants: [(name: String, find: String, replace: String, expected: String)] = [
            ("reg-names", "compatible = \"qemu,virtual-cpufreq\";", "compatible = \"qemu,virtual-cpufreq\";\n\t\treg-names = \"windows\";", "reg-names"),
            ("no-model", "\tmodel = \"\(DeviceTree.rootModel)\";\n", "", "'model' is a required property"),
            ("psci-method", "method = \"hvc\";", "method = \"svc\";", "'svc' is not one of"),
            ("dmips-string", "capacity-dmips-mhz = <1024>;", "capacity-dmips-mhz = \"fast\";", "capacity-dmips-mhz"),
        ]
        // The SCMI node, judged by the kernel's own firmware/arm,scmi.yaml.
        let scmi = try CLI.run(["topology", "dt", "Tests/Fixtures/topology/phone.toml", "--scmi"]).stdout
        let scmiVariants: [(name: String, find: String, replace: String, expected: String)] = [
            ("scmi-clock-cells", "#clock-cells = <1>;", "#clock-cells = <2>;", "protocol@13:#clock-cells: 1 was expected"),
            ("scmi-reg", "reg = <0x13>;", "reg = <0x14>;", "protocol@13:reg:0:0: 19 was expected"),
        ]
        var dtbs: [String] = []
        // dtc itself sees that the cpus' clocks no longer match #clock-cells; the schema is what is tested here.
        for (text, list, flags) in [(source, variants, []), (scmi, scmiVariants, ["-Wno-clocks_property"])] {
            for variant in list {
                #expect(text.contains(variant.find), "\(variant.name)")
                dtbs.append(try DTSchema.compile(
                    text.replacingOccurrences(of: variant.find, with: variant.replace), name: variant.name, in: directory, dtcFlags: flags))
            }
        }
        let diagnostics = try tools.validate(dtbs, schema: tools.schema)
        for variant in variants + scmiVariants {
            let own = diagnostics.filter { $0.contains("\(variant.name).dtb") }
            #expect(own.contains { $0.contains(variant.expected) }, "\(variant.name): \(own)")
        }
    }
}
