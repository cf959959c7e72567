import ArgumentParser
import VCPUFreqCore

struct TopologyCrosvmArgs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crosvm-args",
        abstract: "Print the equivalent crosvm flags for a VM profile, one per line.",
        discussion: "Notes about what the flags cannot express go to stderr."
    )

    @OptionGroup var options: TopologyFileOptions

    func run() throws {
        let topology = try options.load()
        do {
            let rendering = try CrosvmArguments.render(topology, vm: options.vm)
            for note in rendering.notes { printError("note: \(note)") }
            print(CrosvmArguments.commandLine(rendering.arguments))
        } catch {
            throw CLIError(error.description)
        }
    }
}
