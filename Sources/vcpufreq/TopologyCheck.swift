import ArgumentParser
import VCPUFreqConfig
import VCPUFreqCore

struct TopologyCheck: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report every problem of a topology file; exit 1 on any error.",
        discussion: "Each problem is printed as FILE:LINE: error|warning: key.path: message. A clean file gets a summary of each VM."
    )

    @Argument(help: "The topology file (TOML).")
    var file: String

    func run() throws {
        let text: String
        do {
            text = try TopologyFile.readText(path: file)
        } catch {
            throw CLIError(error.description)
        }
        let (topology, diagnostics) = TopologyFile.decode(text)
        for diagnostic in diagnostics { print(TopologyFile.format(diagnostic, file: file)) }
        let errors = diagnostics.filter { $0.severity == .error }.count
        let warnings = diagnostics.count - errors
        guard let topology else {
            print("\(file): \(Self.count(errors, "error")), \(Self.count(warnings, "warning"))")
            throw ExitCode.failure
        }
        print("\(file): OK, \(Self.count(warnings, "warning")); \(Self.count(topology.host.clusters.count, "cluster")), \(Self.count(topology.vms.count, "VM profile"))")
        for vm in topology.vms {
            guard let model = try? topology.model(forVM: vm.name) else { continue }
            print(Self.summary(model, host: topology.host))
        }
    }

    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// `vm "android": 8 vCPUs, ...` then one line per run of vCPUs modeling the same cluster.
    static func summary(_ model: VMModel, host: HostTopology) -> String {
        var lines = ["vm \"\(model.name)\": \(count(model.vcpuCount, "vCPU")), \(count(model.domains.count, "domain")), "
            + "table_mode \(model.tableMode.rawValue), util_cap \(model.utilCap), headroom compensation \(model.compensateHeadroom ? "on" : "off")"]
        var start = 0
        while start < model.vcpus.count {
            let first = model.vcpus[start]
            var end = start
            while end + 1 < model.vcpus.count, model.vcpus[end + 1].cluster == first.cluster,
                model.vcpus[end + 1].hostCPUs == first.hostCPUs, model.vcpus[end + 1].performanceDomain == first.performanceDomain
            {
                end += 1
            }
            let vcpus = start == end ? "vCPU \(start)" : "vCPUs \(start)-\(end)"
            let cluster = host.clusters[first.cluster]
            lines.append(
                "  \(vcpus) -> \(cluster.name) (capacity \(first.capacity), \(first.frequenciesKHz.count) entries up to \(first.maxFrequencyKHz) kHz), "
                    + "domain \(first.performanceDomain), \(model.pin ? "pinned to" : "may run on") CPUs \(first.hostCPUs)")
            start = end + 1
        }
        return lines.joined(separator: "\n")
    }
}
