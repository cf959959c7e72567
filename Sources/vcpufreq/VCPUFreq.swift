import ArgumentParser

@main
struct VCPUFreq: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vcpufreq",
        abstract: "Virtual cpufreq / DVFS device backend for KVM guests on big.LITTLE hosts.",
        version: "0.1.0",
        // BenchDoorbell is registered here until the `bench` group (Bench.swift) is merged.
        subcommands: [Demo.self, TopologyCommand.self, DeviceCommand.self, Serve.self, Status.self, VMM.self, BenchDoorbell.self]
    )
}
