import ArgumentParser

struct TopologyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topology",
        abstract: "Probe, check and render host topology files.",
        subcommands: []
    )
}
