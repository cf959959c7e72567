import ArgumentParser

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Probe, check and render host topology files.",
        discussion: "The topology file (TOML) describes the host's CPU clusters and the VM profiles vcpufreq serves; see docs/topology.md.",
        subcommands: [
            TopologyProbe.self, TopologyCheck.self, TopologyDT.self, TopologyCrosvmArgs.self, TopologyQEMUArgs.self,
            TopologyPolicies.self, TopologyDefault.self,
        ]
    )
}
