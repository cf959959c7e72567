import ArgumentParser
import Foundation
import VCPUFreqKernelLab

/// A VMM process for the restore facet to kill: it attaches a VM of its own
/// threads, hints every vCPU, writes their TIDs once the kernel shows the
/// pin, and waits to be killed.
struct VMMChild: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "vmm", abstract: "Attach a VM and wait to be killed (restore facet).")

    @Option var socket: String
    @Option var name: String
    @Option var profile = "lab"
    @Option(help: "Where to write the vCPU TIDs when attached and hinted.")
    var ready: String

    func run() throws {
        let threads = [LabThread(), LabThread()]
        let vm = try LabVM(socketPath: socket, name: name, profile: profile, threads: threads)
        for vcpu in threads.indices { try vm.request(vcpu: vcpu, utilization: 700, latencySensitive: true) }
        _ = eventually { vm.live.map(\.cpus) == [[0], [1]] }
        try (vm.tids.map(String.init).joined(separator: " ") + "\n").write(toFile: ready, atomically: true, encoding: .utf8)
        while true { pause() }
    }
}
