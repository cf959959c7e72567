/// The `qemu-system-aarch64` arguments that run a VM profile against
/// vcpufreq (QEMU 10.0; `virt` machine): the vCPU count, thread names the
/// daemon finds the vCPU threads by, and the cpufreq device — SCMI with an
/// unmodified QEMU (guest RAM on a shared memfd, which the vhost-user
/// back-end maps), or the upstream virtual-cpufreq windows through the
/// `vcpufreq-cpufreq` device of integrations/qemu/ (a patched QEMU).
///
/// Built as argv words (no shell involved) with notes for what the
/// arguments cannot do themselves. Designed for more than one device kind:
/// each `Device` case adds its own arguments after the common ones.
public enum QEMUArguments {
    /// The guest's cpufreq device.
    public enum Device: Equatable, Sendable {
        /// SCMI over virtio (`vhost-user-scmi`, QEMU 8.1+) served by
        /// `vcpufreq serve --vhost-user-scmi SOCKET=PROFILE`.
        case scmi(socket: String, transport: VirtioTransport)
        /// The upstream `qemu,virtual-cpufreq` windows at `base` (nil: the
        /// profile's `base_address`, or `virtBase` where that is crosvm's
        /// default, which `virt` has flash at), served by `vcpufreq serve
        /// --socket SOCKET` through integrations/qemu/'s `vcpufreq-cpufreq`;
        /// `mirror` false forwards every register load to the daemon.
        case virtualCPUFreq(socket: String, base: UInt64?, mirror: Bool)
    }

    /// Where QEMU plugs a virtio device on `virt`.
    public enum VirtioTransport: String, CaseIterable, Equatable, Sendable {
        /// `vhost-user-scmi` on virtio-mmio (modern mode: `force-legacy=false`,
        /// which Linux's scmi-virtio needs for VIRTIO_F_VERSION_1).
        case mmio
        /// `vhost-user-scmi-pci` (modern-only).
        case pci
    }

    public struct Options: Equatable, Sendable {
        public var device: Device
        /// Guest RAM in MiB (the shared memfd's size).
        public var memoryMiB: Int
        /// The merged guest device tree (`-dtb`); nil: leave it out (a note says how to make one).
        public var dtbPath: String?
        /// `-accel` (kvm, tcg); nil: QEMU's default.
        public var accelerator: String?
        /// `-cpu` (host, max); nil: QEMU's default.
        public var cpu: String?
        /// The VM's name (`-name`, and the daemon's VM name with
        /// virtual-cpufreq: unique per daemon); nil: the profile's name.
        public var name: String?

        public init(
            device: Device, memoryMiB: Int = 512, dtbPath: String? = nil, accelerator: String? = nil, cpu: String? = nil,
            name: String? = nil
        ) {
            self.device = device
            self.memoryMiB = memoryMiB
            self.dtbPath = dtbPath
            self.accelerator = accelerator
            self.cpu = cpu
            self.name = name
        }
    }

    public struct Rendering: Equatable, Sendable {
        /// The argv words, in order.
        public var arguments: [String]
        /// The machine options alone (everything but the device and -dtb):
        /// what `-machine dumpdtb=` needs to dump QEMU's own tree for merging.
        public var machineArguments: [String]
        public var notes: [String]
    }

    /// ids QEMU sees (fixed so the rendering is reproducible).
    public static let memoryID = "vcpufreq-mem"
    public static let chardevID = "vcpufreq-scmi"
    /// Where the virtual-cpufreq device sits on `virt` unless told: the
    /// platform-bus window (VIRT_PLATFORM_BUS, 32 MiB), free while no other
    /// dynamic sysbus device is used. crosvm's 0x1040000 is in `virt`'s flash.
    public static let virtBase: UInt64 = 0x0c00_0000
    /// The QEMU device of integrations/qemu/.
    public static let virtualCPUFreqDevice = "vcpufreq-cpufreq"

    /// Renders the VM `vm` (the first profile when nil) of a checked topology.
    public static func render(_ topology: Topology, vm: String? = nil, options: Options) throws(TopologyError) -> Rendering {
        render(try topology.model(forVM: vm), options: options)
    }

    public static func render(_ model: VMModel, options: Options) -> Rendering {
        var notes: [String] = []
        let memory = "\(max(options.memoryMiB, 1))M"
        let name = options.name ?? model.name
        var sharedMemory = false, accelerator = options.accelerator
        switch options.device {
        case .scmi: sharedMemory = true
        case .virtualCPUFreq:
            // The device hints one host thread per vCPU: TCG must run a thread per vCPU.
            if accelerator == "tcg" { accelerator = "tcg,thread=multi" }
        }
        // GICv3: GICv2 stops at 8 CPUs; with GICv3 the first 16 vCPUs have
        // MPIDR = index, which is what the rendered cpu@N reg says.
        var machine = ["-machine", "virt,gic-version=3" + (sharedMemory ? ",memory-backend=\(memoryID)" : "")]
        if let accelerator { machine += ["-accel", accelerator] }
        if let cpu = options.cpu { machine += ["-cpu", cpu] }
        machine += ["-smp", "\(model.vcpuCount)", "-m", memory]
        if sharedMemory {
            // A vhost-user back-end maps guest RAM: it must be a shared file.
            machine += ["-object", "memory-backend-memfd,id=\(memoryID),size=\(memory),share=on"]
        }
        if model.vcpuCount > 16 {
            notes.append("\(model.vcpuCount) vCPUs: from the 17th, QEMU's GICv3 MPIDRs (cluster of 16) differ from the rendered cpu@N reg")
        }
        // vCPU threads named `CPU N/KVM` or `CPU N/TCG`: how the daemon finds them.
        // `guest=` spelled out (as libvirt does): the implied first key reads
        // a name holding "=" as a key of its own (the topology fuzz target's
        // QEMU reader found it).
        var arguments = machine + ["-name", "guest=\(optionValue(name)),debug-threads=on"]
        var dtbNote =
            "QEMU writes no SCMI node: pass -dtb with QEMU's own tree (dumped with these machine options and "
            + "-machine dumpdtb=FILE) merged with `vcpufreq topology dt --scmi` (scripts/lib/qemu-arm64.sh does it)"
        switch options.device {
        case .scmi(let socket, let transport):
            arguments += ["-chardev", "socket,id=\(chardevID),path=\(optionValue(socket))"]
            switch transport {
            case .mmio:
                arguments += ["-global", "virtio-mmio.force-legacy=false", "-device", "vhost-user-scmi,chardev=\(chardevID)"]
            case .pci:
                arguments += ["-device", "vhost-user-scmi-pci,chardev=\(chardevID)"]
            }
        case .virtualCPUFreq(let socket, let base, let mirror):
            let address = base ?? (model.addressMap.base == DeviceAddressMap.defaultBase ? virtBase : model.addressMap.base)
            if base == nil, address != model.addressMap.base {
                notes.append(
                    "base_address 0x\(hex(model.addressMap.base)) (crosvm's) is in the flash of QEMU's virt: the device "
                        + "sits at 0x\(hex(address)), the platform-bus window (--base to choose)")
            }
            var device = "\(virtualCPUFreqDevice),socket=\(optionValue(socket)),vm-name=\(optionValue(name))"
            device += ",profile=\(optionValue(model.name)),base=0x\(hex(address))"
            if !mirror { device += ",mirror=off" }
            arguments += ["-device", device]
            if options.accelerator == nil {
                notes.append("vcpufreq-cpufreq needs a host thread per vCPU: KVM, or -accel tcg,thread=multi")
            }
            notes.append("vcpufreq-cpufreq is not in upstream QEMU: scripts/build-qemu builds QEMU with it (integrations/qemu/)")
            dtbNote = "QEMU writes no virtual-cpufreq node: pass -dtb with QEMU's own tree (dumped with these machine options "
                + "and -machine dumpdtb=FILE) merged with `vcpufreq topology dt --base 0x\(hex(address))` "
                + "(scripts/lib/qemu-arm64.sh does it)"
        }
        if model.pin { notes.append("QEMU does not pin vCPU threads; the daemon pins them to their clusters (pin = true)") }
        if let dtb = options.dtbPath {
            arguments += ["-dtb", dtb]
        } else {
            notes.append(dtbNote)
        }
        return Rendering(arguments: arguments, machineArguments: machine, notes: notes)
    }

    /// A value inside a QEMU option list (`-device drv,key=VALUE,...`):
    /// QEMU reads `,,` as a comma of the value. Scalar by scalar, as QEMU
    /// reads bytes: "," followed by a combining mark is one Character.
    public static func optionValue(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            if scalar == "," { out += "," }
            out.unicodeScalars.append(scalar)
        }
        return out
    }

    static func hex(_ value: UInt64) -> String { String(value, radix: 16) }

    /// Shell-quoted words, ` \` continued, one option (with its value) per line.
    public static func commandLine(_ arguments: [String]) -> String {
        var lines: [String] = []
        var index = 0
        while index < arguments.count {
            var line = CrosvmArguments.shellQuoted(arguments[index])
            if arguments[index].hasPrefix("-"), index + 1 < arguments.count, !arguments[index + 1].hasPrefix("-") {
                line += " " + CrosvmArguments.shellQuoted(arguments[index + 1])
                index += 1
            }
            lines.append(line)
            index += 1
        }
        return lines.enumerated().map { $0.offset == lines.count - 1 ? $0.element : $0.element + " \\" }.joined(separator: "\n")
    }
}
