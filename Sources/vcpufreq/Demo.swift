import ArgumentParser
import Foundation
import VCPUFreqConfig
import VCPUFreqCore
import VCPUFreqLinux

struct Demo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Show vcpufreq at work: a real KVM guest against the daemon, or a replayed guest session without KVM.",
        discussion: """
            With a usable /dev/kvm: starts `vcpufreq serve` and the reference VMM with a real guest on the embedded \
            phone-like topology (or --topology): the guest probes the device, sends a realistic burst of requests on every \
            path (set_perf, cur_perf ticks from the read-only mirror, util hints, shared-page publishes with and without \
            kicks), and the report shows per vCPU what was asked, what the daemon applied and what it cost.
            Without KVM (or with --replay) it says why and replays a generated guest session (driver probe, idle, an app \
            launch, touch input through the shared page, scrolling with util hints, background, a misbehaving guest) \
            through the device model and the policy, on that topology and on this host's probe.
            """
    )

    @Option(help: "Use this topology file instead of the embedded phone-like host.")
    var topology: String?

    @Flag(help: "Skip the real KVM run; replay the session through the device model and policy.")
    var replay = false

    @Flag(name: .customLong("skip-host"), help: "Replay: do not also run the session on this host's probed topology.")
    var skipHost = false

    @Option(name: .customLong("write-trace"), help: "Replay: write the session's trace to this file (replay it with `vcpufreq device replay`).")
    var writeTrace: String?

    @Option(name: .customLong("kvm-device"), help: "The KVM device for the real run.")
    var kvmDevice = "/dev/kvm"

    func run() throws {
        let (phone, label) = try loadTopology()
        if !replay && writeTrace == nil {
            if try runOnKVM(phone, label: label) { return }
            print("falling back to the replay demo (no KVM needed)\n")
        }
        try runReplay(phone, label: label)
    }

    private func loadTopology() throws -> (Topology, String) {
        if let topology { return (try TopologyFileOptions(file: topology, vm: nil).load(), topology) }
        let (decoded, diagnostics) = TopologyFile.decode(EmbeddedTopology.phone)
        guard let decoded else { throw CLIError("embedded topology: \(diagnostics)") }
        return (decoded, "embedded phone-like host")
    }

    /// The real thing: our own daemon and the reference VMM with a guest. Returns
    /// false (after saying why) when this machine has no usable KVM.
    private func runOnKVM(_ topology: Topology, label: String) throws -> Bool {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-demo-\(getpid()).toml").path
        try writeOutput(TopologyFile.encode(topology, header: ["vcpufreq demo: \(label)"]), to: path)
        defer { unlink(path) }
        var arguments = ["--topology", path, "--script", "demo", "--kvm-device", kvmDevice]
        // A phone topology pins vCPUs to CPUs this machine may not have: the
        // guest still sees the phone, the daemon just does not pin.
        let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        let highest = topology.host.clusters.flatMap(\.cpus.ids).max() ?? 0
        if highest >= online {
            print("note: \(label) has CPUs up to \(highest), this machine \(online): vCPU threads are not pinned\n")
            arguments.append("--no-pin")
        }
        do {
            let vmm = try VMM.parse(arguments)
            try vmm.run()
            return true
        } catch let exit as ExitCode where exit.rawValue == VMM.kvmUnavailableStatus {
            return false
        }
    }

    private func runReplay(_ phone: Topology, label: String) throws {
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
