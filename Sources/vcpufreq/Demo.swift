import ArgumentParser
import VCPUFreqConfig
import VCPUFreqCore
import VCPUFreqLinux

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show vcpufreq at work: a realistic guest session, request by request, on a phone-like host and on this host.",
        discussion: """
            Replays a generated guest session (driver probe, idle, an app launch, touch input through the shared page, \
            scrolling with util hints, background, a misbehaving guest) through the device model and the policy, and \
            prints per phase what the guest asked and which hints the host would apply. Needs no privileges and no KVM.
            """
    )

    @Option(help: "Use this topology file instead of the embedded phone-like host.")
    var topology: String?

    @Flag(name: .customLong("skip-host"), help: "Do not also run the session on this host's probed topology.")
    var skipHost = false

    @Option(name: .customLong("write-trace"), help: "Write the phone session's trace to this file (replay it with `vcpufreq device replay`).")
    var writeTrace: String?

    func run() throws {
        let phone: Topology
        let label: String
        if let topology {
            phone = try TopologyFileOptions(file: topology, vm: nil).load()
            label = topology
        } else {
            let (decoded, diagnostics) = TopologyFile.decode(EmbeddedTopology.phone)
            guard let decoded else { throw CLIError("embedded topology: \(diagnostics)") }
            phone = decoded
            label = "embedded phone-like host"
        }
        print("vcpufreq demo: a guest session through the device model and the policy (no KVM, nothing changed on this host)\n")
        let model = try modelOrFail(phone, label)
        let session = GuestSession(vm: model)
        if let writeTrace { try writeOutput(session.text, to: writeTrace) }
        print(DemoReport.run(session: session, model: model, host: phone.host, title: label))

        guard !skipHost else { return }
        let probed: Topology
        do {
            let snapshot = try SysfsReader().snapshot()
            probed = SysfsProbe.topology(from: snapshot, hostName: "this host").topology
        } catch {
            print("(this host could not be probed: \(error))")
            return
        }
        let hostModel = try modelOrFail(probed, "this host")
        print(DemoReport.run(session: GuestSession(vm: hostModel), model: hostModel, host: probed.host, title: "this host (probed from /sys)"))
    }

    private func modelOrFail(_ topology: Topology, _ label: String) throws -> VMModel {
        do { return try topology.model() } catch { throw CLIError("\(label): \(error)") }
    }
}
