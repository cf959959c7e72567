import ArgumentParser
import VCPUFreqCore

struct TopologyQEMUArgs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qemu-args",
        abstract: "Print the qemu-system-aarch64 arguments that run a VM profile with vcpufreq as its cpufreq device.",
        discussion: """
            vCPU thread names the daemon finds (debug-threads=on) and the device: --device scmi (unmodified QEMU: \
            shared guest memory on a memfd, the vhost-user chardev, vhost-user-scmi; docs/scmi.md) or --device \
            virtual-cpufreq (the vcpufreq-cpufreq device of integrations/qemu/, which scripts/build-qemu builds into \
            QEMU; docs/integrating.md). Notes go to stderr. --format lines prints one argv word per line (for scripts); \
            --machine-only prints only the machine options (for -machine dumpdtb=, to merge QEMU's tree with \
            `topology dt --scmi`). See docs/scmi.md.
            """
    )

    enum DeviceKind: String, ExpressibleByArgument, CaseIterable {
        case scmi
        case virtualCPUFreq = "virtual-cpufreq"
    }

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case shell, lines
    }

    @OptionGroup var options: TopologyFileOptions

    @Option(help: "The guest's cpufreq device: \(DeviceKind.allCases.map(\.rawValue).joined(separator: ", ")).")
    var device: DeviceKind = .scmi

    @Option(
        help: ArgumentHelp(
            "The daemon's socket: scmi's vhost-user socket (default /run/vcpufreq/<vm>-scmi.sock), virtual-cpufreq's "
                + "vcpufreq serve --socket (default /run/vcpufreq.sock).", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("virtual-cpufreq: guest-physical base of the device (hex 0x... or decimal; default the profile's base_address, 0xc000000 for crosvm's default).", valueName: "addr"))
    var base: String?

    @Flag(name: .customLong("no-mirror"), help: "virtual-cpufreq: map no read-only register mirror (every register load goes to the daemon).")
    var noMirror = false

    @Option(help: ArgumentHelp("The VM's name (-name; the daemon's VM name with virtual-cpufreq); default the profile's.", valueName: "name"))
    var name: String?

    @Option(help: "Where the virtio device sits: mmio (vhost-user-scmi) or pci (vhost-user-scmi-pci).")
    var transport: QEMUArguments.VirtioTransport = .mmio

    @Option(name: .customLong("memory-mib"), help: "Guest RAM in MiB.")
    var memoryMiB = 512

    @Option(help: ArgumentHelp("The merged guest device tree to boot with (-dtb).", valueName: "file"))
    var dtb: String?

    @Option(help: "QEMU accelerator (kvm, tcg); default: QEMU's.")
    var accel: String?

    @Option(help: "QEMU CPU model (host, max); default: QEMU's.")
    var cpu: String?

    @Option(help: "shell (quoted, one option per line) or lines (one argv word per line).")
    var format: Format = .shell

    @Flag(name: .customLong("machine-only"), help: "Only the machine options (no device, no -dtb).")
    var machineOnly = false

    func validate() throws {
        guard (64...1_048_576).contains(memoryMiB) else { throw ValidationError("--memory-mib must be 64...1048576") }
        if device == .scmi, base != nil || noMirror {
            throw ValidationError("--base and --no-mirror are virtual-cpufreq's; the SCMI device has no MMIO windows")
        }
        if device == .virtualCPUFreq, transport != .mmio {
            throw ValidationError("--transport is the SCMI device's; virtual-cpufreq is a sysbus device")
        }
        if let base { _ = try TopologyDT.parseAddress(base) }
        if let name, name.isEmpty || name.utf8.count > 64 { throw ValidationError("--name must have 1 to 64 bytes") }
    }

    func run() throws {
        let topology = try options.load()
        let vm = options.vm ?? topology.vms.first?.name ?? "vm"
        let device: QEMUArguments.Device
        switch self.device {
        case .scmi: device = .scmi(socket: socket ?? "/run/vcpufreq/\(vm)-scmi.sock", transport: transport)
        case .virtualCPUFreq:
            device = .virtualCPUFreq(socket: socket ?? "/run/vcpufreq.sock", base: try base.map(TopologyDT.parseAddress), mirror: !noMirror)
        }
        let rendering: QEMUArguments.Rendering
        do {
            rendering = try QEMUArguments.render(
                topology, vm: options.vm,
                options: .init(device: device, memoryMiB: memoryMiB, dtbPath: dtb, accelerator: accel, cpu: cpu, name: name))
        } catch {
            throw CLIError(error.description)
        }
        let words = machineOnly ? rendering.machineArguments : rendering.arguments
        if !machineOnly { for note in rendering.notes { printError("note: \(note)") } }
        switch format {
        case .shell: print(QEMUArguments.commandLine(words))
        case .lines: for word in words { print(word) }
        }
    }
}

extension QEMUArguments.VirtioTransport: ExpressibleByArgument {}
