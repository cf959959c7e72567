import Foundation
import Glibc

/// What the numbers were measured on, for the report: they mean little
/// without it (a PVM host exits through a different path than VMX/SVM; a
/// 2-core VM wakes a sleeping CPU through its own host).
public struct MachineDescription: Sendable, Equatable, Codable {
    public var cpuModel: String
    public var onlineCPUs: Int
    public var kernel: String
    /// "PVM" when the kvm_pvm module is loaded, else "VMX", "SVM" or "unknown".
    public var kvmFlavour: String
    /// This machine is itself a guest (the `hypervisor` CPU flag).
    public var isVirtualMachine: Bool
    /// The clock source of the host kernel (tsc, kvm-clock, ...).
    public var clockSource: String
    /// How the benchmark was built: release numbers are the ones to quote.
    public var buildConfiguration: String
    public var swiftVersion: String

    public static func current() -> MachineDescription {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        func firstValue(_ key: String) -> String? {
            for line in cpuinfo.split(separator: "\n") where line.hasPrefix(key) {
                return line.split(separator: ":", maxSplits: 1).last.map { $0.trimmingCharacters(in: .whitespaces) }
            }
            return nil
        }
        let flags = Set((firstValue("flags") ?? "").split(separator: " ").map(String.init))
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
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
        let clock = (try? String(
            contentsOfFile: "/sys/devices/system/clocksource/clocksource0/current_clocksource", encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "unknown"
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
            cpuModel: firstValue("model name") ?? "unknown", onlineCPUs: max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1),
            kernel: release, kvmFlavour: flavour, isVirtualMachine: flags.contains("hypervisor"), clockSource: clock,
            buildConfiguration: configuration, swiftVersion: swift)
    }

    /// The 1, 5 and 15 minute load averages ("2.42 2.68 3.14").
    public static func loadAverage() -> String {
        let text = (try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8)) ?? ""
        return text.split(separator: " ").prefix(3).joined(separator: " ")
    }

    /// One line for the README and the table's caption.
    public var summary: String {
        "\(cpuModel), \(onlineCPUs) CPUs\(isVirtualMachine ? " (itself a VM)" : ""), Linux \(kernel), "
            + "KVM \(kvmFlavour), clocksource \(clockSource), \(buildConfiguration) build"
    }
}
