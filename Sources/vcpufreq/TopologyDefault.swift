import ArgumentParser

struct TopologyDefault: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "default",
        abstract: "Print the embedded topology file (the phone `demo` and `scripts/test-scmi-guest` use by default).",
        discussion: "A starting point for a topology of your own: `vcpufreq topology default > my.toml`."
    )

    func run() throws {
        print(EmbeddedTopology.phone)
    }
}
