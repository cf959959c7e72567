import ArgumentParser
import VCPUFreqCore

struct TopologyCrosvmArgs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "crosvm-args",
        abstract: "Print the equivalent crosvm flags for a VM profile, one per line.",
        discussion: "Notes about what the flags cannot express go to stderr. With --scmi the cpufreq device is SCMI over vhost-user (--vhost-user type=scmi) served by `vcpufreq serve --vhost-user-scmi`."
    )

    @OptionGroup var options: TopologyFileOptions

    @Flag(help: "SCMI over vhost-user instead of crosvm's virtual-cpufreq device.")
    var scmi = false

    @Option(help: ArgumentHelp("With --scmi: the daemon's vhost-user socket (default /run/vcpufreq/<vm>-scmi.sock).", valueName: "path"))
    var socket: String?

    func validate() throws {
        if socket != nil && !scmi { throw ValidationError("--socket needs --scmi") }
    }

    func run() throws {
        let topology = try options.load()
        do {
            let vm = options.vm ?? topology.vms.first?.name ?? "vm"
            let rendering = try CrosvmArguments.render(
                topology, vm: options.vm, scmiSocket: scmi ? socket ?? "/run/vcpufreq/\(vm)-scmi.sock" : nil)
            for note in rendering.notes { printError("note: \(note)") }
            print(CrosvmArguments.commandLine(rendering.arguments))
        } catch {
            throw CLIError(error.description)
        }
    }
}
