import Foundation
import Glibc

/// What the numbers were measured on, for every benchmark's report: they
/// mean little without it (a PVM host exits through a different path than
/// VMX/SVM; a 2-core VM wakes a sleeping CPU through its own host; the
/// same machine kind has come up on Intel and AMD hosts with exit costs
/// 2.3 × apart).
public struct MachineDescription: Sendable, Equatable, Codable {
    /// `model name` of /proc/cpuinfo (`Model` on arm64).
    public var cpuModel: String
    public var onlineCPUs: Int
    /// The online CPUs in the sysfs list form ("0-1").
    public var onlineCPUList: String
    /// `uname -r`.
    public var kernel: String
    /// "PVM" when the kvm_pvm module is loaded, else "VMX", "SVM" or "unknown".
    public var kvmFlavour: String
    /// /dev/kvm exists.
    public var hasKVMDevice: Bool
    /// This machine is itself a guest (the `hypervisor` CPU flag).
    public var isVirtualMachine: Bool
    /// The clock source of the host kernel (tsc, kvm-clock, ...).
    public var clockSource: String
    /// How the benchmark was built: release numbers are the ones to quote.
    public var buildConfiguration: String
    public var swiftVersion: String

    public init(
        cpuModel: String, onlineCPUs: Int, onlineCPUList: String = "", kernel: String, kvmFlavour: String,
        hasKVMDevice: Bool = true, isVirtualMachine: Bool, clockSource: String, buildConfiguration: String,
        swiftVersion: String
    ) {
        self.cpuModel = cpuModel
        self.onlineCPUs = onlineCPUs
        self.onlineCPUList = onlineCPUList
        self.kernel = kernel
        self.kvmFlavour = kvmFlavour
        self.hasKVMDevice = hasKVMDevice
        self.isVirtualMachine = isVirtualMachine
        self.clockSource = clockSource
        self.buildConfiguration = buildConfiguration
        self.swiftVersion = swiftVersion
    }

    /// Reads /proc and /sys of this machine.
    public static func current() -> MachineDescription {
        let cpuinfo = ProcText.read("/proc/cpuinfo") ?? ""
        var model = "unknown"
        var flags: Set<Substring> = []
        for line in cpuinfo.split(separator: "\n") {
            if model == "unknown", line.hasPrefix("model name") || line.hasPrefix("Model"),
                let colon = line.firstIndex(of: ":")
            {
                model = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            if flags.isEmpty, line.hasPrefix("flags"), let colon = line.firstIndex(of: ":") {
                flags = Set(line[line.index(after: colon)...].split(separator: " "))
            }
        }
        func trimmed(_ path: String) -> String? {
            ProcText.read(path)?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
        let flavour: String
        if access("/sys/module/kvm_pvm", F_OK) == 0 {
            flavour = "PVM"
        } else if access("/sys/module/kvm_intel", F_OK) == 0 {
            flavour = "VMX"
        } else if access("/sys/module/kvm_amd", F_OK) == 0 {
            flavour = "SVM"
        } else {
            flavour = "unknown"
        }
        #if DEBUG
            let configuration = "debug"
        #else
            let configuration = "release"
        #endif
        #if compiler(>=6.3)
            let swift = "6.3+"
        #elseif compiler(>=6.2)
            let swift = "6.2"
        #else
            let swift = "6.x"
        #endif
        return MachineDescription(
            cpuModel: model, onlineCPUs: max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1),
            onlineCPUList: trimmed("/sys/devices/system/cpu/online") ?? "0",
            kernel: trimmed("/proc/sys/kernel/osrelease") ?? "unknown", kvmFlavour: flavour,
            hasKVMDevice: access("/dev/kvm", F_OK) == 0, isVirtualMachine: flags.contains("hypervisor"),
            clockSource: trimmed("/sys/devices/system/clocksource/clocksource0/current_clocksource") ?? "unknown",
            buildConfiguration: configuration, swiftVersion: swift)
    }

    /// The 1, 5 and 15 minute load averages as /proc/loadavg prints them ("2.42 2.68 3.14").
    public static func loadAverage() -> String {
        (ProcText.read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// The 1, 5 and 15 minute load averages as numbers.
    public static func loadAverages() -> [Double] {
        loadAverage().split(separator: " ").compactMap { Double($0) }
    }

    /// Seconds since boot (/proc/uptime), nil when unreadable.
    public static func uptimeSeconds() -> Double? {
        (ProcText.read("/proc/uptime") ?? "").split(separator: " ").first.flatMap { Double($0) }
    }

    /// KVM on this machine in words.
    public var kvmDescription: String {
        guard hasKVMDevice else { return "no /dev/kvm" }
        switch kvmFlavour {
        case "PVM": return "/dev/kvm is PVM (kvm_pvm: no VMX/SVM in this VM)"
        case "VMX", "SVM": return "/dev/kvm with \(kvmFlavour)"
        default: return "/dev/kvm (kind unknown)"
        }
    }

    /// One line for a README and a table's caption: CPU, kernel, KVM, clock, build.
    public var summary: String {
        "\(cpuModel), \(onlineCPUs) CPUs\(isVirtualMachine ? " (itself a VM)" : ""), Linux \(kernel), "
            + "KVM \(kvmFlavour), clocksource \(clockSource), \(buildConfiguration) build"
    }

    /// One line with the CPU list and KVM in words (`bench daemon`'s header).
    public var summaryWithCPUList: String {
        "\(cpuModel), \(onlineCPUs) CPUs (\(onlineCPUList)), Linux \(kernel)"
            + (isVirtualMachine ? ", itself a VM" : "") + "; \(kvmDescription)"
    }

    // MARK: Coding

    private enum CodingKeys: String, CodingKey {
        case cpuModel, onlineCPUs, onlineCPUList, kernel, kvmFlavour, hasKVMDevice, isVirtualMachine, clockSource
        case buildConfiguration, swiftVersion
        /// Written by `bench daemon` before the benchmarks shared this type.
        case virtualized, kvm
    }

    /// Also reads the two shapes the benchmarks wrote before they shared
    /// this type: `bench doorbell`'s (no CPU list) and `bench daemon`'s
    /// (`virtualized`, KVM in words, no clock source or build), so old
    /// result files can be rendered again.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        cpuModel = try container.decode(String.self, forKey: .cpuModel)
        onlineCPUs = try container.decode(Int.self, forKey: .onlineCPUs)
        onlineCPUList = try container.decodeIfPresent(String.self, forKey: .onlineCPUList) ?? ""
        kernel = try container.decode(String.self, forKey: .kernel)
        let words = try container.decodeIfPresent(String.self, forKey: .kvm)
        if let flavour = try container.decodeIfPresent(String.self, forKey: .kvmFlavour) {
            kvmFlavour = flavour
        } else {
            kvmFlavour = ["PVM", "VMX", "SVM"].first { words?.contains($0) == true } ?? "unknown"
        }
        hasKVMDevice = try container.decodeIfPresent(Bool.self, forKey: .hasKVMDevice) ?? (words != "no /dev/kvm")
        isVirtualMachine = try container.decodeIfPresent(Bool.self, forKey: .isVirtualMachine)
            ?? container.decode(Bool.self, forKey: .virtualized)
        clockSource = try container.decodeIfPresent(String.self, forKey: .clockSource) ?? "unknown"
        buildConfiguration = try container.decodeIfPresent(String.self, forKey: .buildConfiguration) ?? "unknown"
        swiftVersion = try container.decodeIfPresent(String.self, forKey: .swiftVersion) ?? "unknown"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(cpuModel, forKey: .cpuModel)
        try container.encode(onlineCPUs, forKey: .onlineCPUs)
        try container.encode(onlineCPUList, forKey: .onlineCPUList)
        try container.encode(kernel, forKey: .kernel)
        try container.encode(kvmFlavour, forKey: .kvmFlavour)
        try container.encode(hasKVMDevice, forKey: .hasKVMDevice)
        try container.encode(isVirtualMachine, forKey: .isVirtualMachine)
        try container.encode(clockSource, forKey: .clockSource)
        try container.encode(buildConfiguration, forKey: .buildConfiguration)
        try container.encode(swiftVersion, forKey: .swiftVersion)
    }
}
