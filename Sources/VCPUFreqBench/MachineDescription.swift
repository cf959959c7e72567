import Foundation

/// What the numbers were measured on: IPC and wake-up costs depend on it
/// more than on anything in the daemon.
public struct MachineDescription: Codable, Equatable, Sendable {
    /// `model name` of /proc/cpuinfo.
    public var cpuModel: String
    /// Online CPUs and their list (sysfs form).
    public var onlineCPUs: Int
    public var onlineCPUList: String
    /// `uname -r`.
    public var kernel: String
    /// Whether this machine is itself a VM (the CPU's hypervisor flag).
    public var virtualized: Bool
    /// KVM on this machine: absent, or present with VMX/SVM or PVM.
    public var kvm: String

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
        let online = ProcText.read("/sys/devices/system/cpu/online")?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "0"
        let kernel = ProcText.read("/proc/sys/kernel/osrelease")?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
        let kvm: String
        if !FileManager.default.fileExists(atPath: "/dev/kvm") {
            kvm = "no /dev/kvm"
        } else if FileManager.default.fileExists(atPath: "/sys/module/kvm_pvm") {
            kvm = "/dev/kvm is PVM (kvm_pvm: no VMX/SVM in this VM)"
        } else if flags.contains("vmx") {
            kvm = "/dev/kvm with VMX"
        } else if flags.contains("svm") {
            kvm = "/dev/kvm with SVM"
        } else {
            kvm = "/dev/kvm (kind unknown)"
        }
        return MachineDescription(
            cpuModel: model, onlineCPUs: ProcessInfo.processInfo.activeProcessorCount, onlineCPUList: online,
            kernel: kernel, virtualized: flags.contains("hypervisor"), kvm: kvm)
    }

    /// The 1, 5 and 15 minute load averages now.
    public static func loadAverage() -> [Double] {
        (ProcText.read("/proc/loadavg") ?? "").split(separator: " ").prefix(3).compactMap { Double($0) }
    }

    /// One line for the report header.
    public var summary: String {
        "\(cpuModel), \(onlineCPUs) CPUs (\(onlineCPUList)), Linux \(kernel)"
            + (virtualized ? ", itself a VM" : "") + "; \(kvm)"
    }
}
