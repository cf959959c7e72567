import ArgumentParser
import VCPUFreqCore

struct TopologyDT: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dt",
        abstract: "Print the guest device-tree source (cpus, cpu-map, qemu,virtual-cpufreq or SCMI) for a VM profile.",
        discussion: "With --scmi the cpufreq device is SCMI over virtio (docs/scmi.md): /firmware/scmi (arm,scmi-virtio) with protocol@13, each CPU's performance domain as clocks = <&scmi_dvfs N>, and no MMIO node."
    )

    @OptionGroup var options: TopologyFileOptions

    @Option(help: ArgumentHelp("Guest-physical base of the device (hex 0x... or decimal); overrides vm.base_address.", valueName: "addr"))
    var base: String?

    @Flag(help: "Describe the SCMI performance device over virtio-scmi instead of qemu,virtual-cpufreq.")
    var scmi = false

    @Option(name: .shortAndLong, help: ArgumentHelp("Write the source here instead of stdout.", valueName: "file"))
    var output: String?

    func validate() throws {
        if let base { _ = try Self.parseAddress(base) }
        if scmi, base != nil { throw ValidationError("--base places the virtual-cpufreq windows; the SCMI device (--scmi) has no MMIO") }
    }

    func run() throws {
        let topology = try options.load()
        let address = try base.map(Self.parseAddress)
        if let address, let vcpus = topology.profile(named: options.vm)?.vcpuCount,
            address > UInt64.max - UInt64(vcpus) * UpstreamABI.windowSize
        {
            throw ValidationError("--base 0x\(String(address, radix: 16)): the device would run past the top of the address space")
        }
        do {
            try writeOutput(try DeviceTree.render(topology, vm: options.vm, baseAddress: address, device: scmi ? .scmi : .virtualCPUFreq), to: output)
        } catch let error as TopologyError {
            throw CLIError(error.description)
        }
    }

    /// `0x1040000`, `0X1040000` or `17039360`; 4 KiB aligned (the windows are pages).
    static func parseAddress(_ text: String) throws -> UInt64 {
        let trimmed = text.filter { $0 != "_" }
        let value: UInt64?
        if trimmed.lowercased().hasPrefix("0x") {
            value = UInt64(trimmed.dropFirst(2), radix: 16)
        } else {
            value = UInt64(trimmed)
        }
        guard let value else { throw ValidationError("--base \"\(text)\" is not an address (hex 0x... or decimal)") }
        guard value % 0x1000 == 0 else { throw ValidationError("--base \(text) is not 4 KiB aligned") }
        return value
    }
}
