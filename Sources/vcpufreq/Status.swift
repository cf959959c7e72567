import ArgumentParser
import VCPUFreqClient
import VCPUFreqProtocol

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every VM and vCPU the daemon serves: requests, applied hints, actuators, counters."
    )

    @Option(help: "Path of the daemon's socket.")
    var socket: String

    @Flag(help: "Print the daemon's JSON status document.")
    var json = false

    func run() throws {
        let client: VCPUFreqClient
        do {
            client = try VCPUFreqClient(socketPath: socket, clientName: "vcpufreq status")
            if json {
                print(String(decoding: try client.statusJSON(), as: UTF8.self))
                return
            }
            print(Self.render(try client.status()), terminator: "")
        } catch {
            throw CLIError("\(socket): \(error)")
        }
    }

    static func render(_ status: StatusDocument) -> String {
        let d = status.daemon
        var out = "vcpufreq \(d.version) pid \(d.pid), up \(Int(d.uptimeSeconds)) s, \(status.vms.count) VMs, \(d.vcpus) vCPUs, "
            + "\(d.connections) connections\nactuators: \(d.actuators)\(d.dryRun ? " (dry run)" : "")\n"
        for note in d.actuatorNotes { out += "  \(note)\n" }
        out += "bpf: \(d.bpf)\n"
        if let page = d.capabilities["bpf_map_page"] { out += "bpf-map shared pages: \(page)\n" }
        if let w = d.wakeups {
            out += "wake-ups: \(w.total) (timer \(w.timer), doorbells \(w.doorbells), connections \(w.connections), other \(w.other))\n"
        }
        if d.recoveredThreads > 0 { out += "restored \(d.recoveredThreads) threads of a killed daemon at start\n" }
        for vm in status.vms {
            let c = vm.counters
            out += "\nvm \"\(vm.name)\" (id \(vm.id), profile \(vm.profile), pid \(vm.peerPID)): \(vm.actuators), kick mode \(vm.kickMode)"
                + "\(vm.polling ? " (polling)" : ""), shared page \(vm.sharedMapped ? "mapped" : "not mapped")"
                + (vm.sharedPage.map { " (\($0))" } ?? "") + "\(vm.mirrorMapped ? " + mirror" : "")\n"
            if let note = vm.sharedPageNote { out += "  memfd page: \(note)\n" }
            out += "  requests \(c.requests), kicks \(c.kicks), polls \(c.polls), accesses \(c.accesses), invalid \(c.invalidAccesses), "
                + "actuation errors \(c.actuationErrors), restores \(c.restores)\n"
            if !vm.invalidAccesses.isEmpty {
                out += "  invalid: " + vm.invalidAccesses.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ") + "\n"
            }
            out += "  vcpu   tid     dom  cur_perf_khz  util_min  util_max  latency        cpus    requests  last request\n"
            for v in vm.vcpus {
                func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
                out += "  " + pad("\(v.index)", 7) + pad("\(v.tid)", 8) + pad("\(v.domain)", 5) + pad("\(v.currentPerformanceKHz)", 14)
                    + pad(v.utilMin.map(String.init) ?? "-", 10) + pad(v.utilMax.map(String.init) ?? "-", 10)
                    + pad(v.latency ?? "-", 15) + pad(v.cpus ?? "-", 8) + pad("\(v.requests)", 10)
                    + (v.lastRequest ?? "-") + (v.capped ? " (capped)" : "") + "\n"
            }
        }
        return out
    }
}
