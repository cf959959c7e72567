import ArgumentParser
import VCPUFreqConfig
import VCPUFreqCore

struct DeviceReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Replay a trace of guest accesses; print every read's value and the resulting hints.",
        discussion: """
            A trace has one access per line: `<vcpu> r <offset> [<width>]` or `<vcpu> w <offset> <value> [<width>]`, \
            numbers decimal or 0x-hex, `#` comments, width 4 by default, plus `wait <microseconds>`. Offsets are in the \
            VM's device space: upstream windows at 0 (vCPU n at n*0x1000), util-hint windows at 0x400000, shared page \
            at 0x800000, doorbells at 0x880000 (docs/abi.md).
            """
    )

    @Option(name: .long, help: "The topology file (TOML).")
    var topology: String

    @Option(help: "The VM profile to use (default: the first [[vm]]).")
    var vm: String?

    @Option(name: .customLong("step-us"), help: "Virtual time each access takes, in microseconds.")
    var stepMicroseconds: UInt64 = 1000

    @Flag(help: "Print the report as JSON.")
    var json = false

    @Argument(help: "The trace file.")
    var trace: String

    func run() throws {
        let options = TopologyFileOptions(file: topology, vm: vm)
        let loaded = try options.load()
        let model: VMModel
        do {
            model = try loaded.model(forVM: vm)
        } catch {
            throw CLIError("\(topology): \(error)")
        }
        let text: String
        do {
            text = try TopologyFile.readText(path: trace)
        } catch {
            throw CLIError(error.description)
        }
        let (parsed, diagnostics) = Trace.parse(text)
        if !diagnostics.isEmpty {
            for diagnostic in diagnostics { printError(TopologyFile.format(diagnostic, file: trace)) }
            throw ExitCode.failure
        }
        var session = ReplaySession(vm: model, stepMicroseconds: stepMicroseconds)
        session.run(parsed)
        let report = ReplayReport(session: session, stepMicroseconds: stepMicroseconds)
        print(json ? report.json : report.text, terminator: "")
    }
}

extension TopologyFileOptions {
    init(file: String, vm: String?) {
        self.init()
        self.file = file
        self.vm = vm
    }
}
