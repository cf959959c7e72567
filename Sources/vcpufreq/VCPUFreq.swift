import ArgumentParser

@main
struct VCPUFreq: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcpufreq",
        abstract: "Virtual cpufreq / DVFS device backend for KVM guests on big.LITTLE hosts.",
        version: "0.1.0",
        subcommands: [
            Demo.self, TopologyCommand.self, DeviceCommand.self, Serve.self, Status.self, Stats.self, VMM.self, Bench.self,
            SchedulerCommand.self,
        ]
    )
}
