import Foundation
import VCPUFreqCore

/// The topology the daemon under test serves, written as TOML so the test
/// goes through the same file parsing an operator's file does. One host
/// cluster over every online CPU (a nominal table: this machine has no
/// cpufreq), and 2-vCPU profiles that pin vCPU 0 to the last CPU and vCPU 1
/// to the first, so attaching visibly changes each thread's affinity.
enum TestTopology {
    /// The host table, ascending, kHz: what perftbl_rd/freqtbl_rd must return in order.
    static let tableKHz: [UInt32] = [1_000_000, 1_500_000, 2_000_000]
    static var maxKHz: UInt32 { tableKHz.last! }
    /// The guest's VM device base in every profile.
    static let baseAddress: UInt64 = 0x200_0000

    static let onlineCPUs: [Int] = {
        let text = (try? String(contentsOfFile: "/sys/devices/system/cpu/online", encoding: .utf8)) ?? "0"
        return ((try? CPUList(parsing: text.trimmingCharacters(in: .whitespacesAndNewlines)))?.ids) ?? [0]
    }()

    /// Host CPUs vCPU 0 and vCPU 1 are pinned to.
    static var pinnedCPUs: [[Int]] { [[onlineCPUs.last!], [onlineCPUs.first!]] }

    /// One `[[vm]]`: 2 vCPUs, one performance domain each, no hysteresis and
    /// no minimum interval (so every request's hint is applied at once and
    /// expected values are exact).
    struct Profile {
        var name: String
        var kickMode = "always"
        var pollIntervalMicroseconds = 1000
        var latencyHint = "slice"
        var latencySliceMicroseconds = 400
        var latencyNice = -7
        var utilCap = 1000
        var pin = true
        var vcpus = 2
    }

    static let standardProfiles: [Profile] = [
        Profile(name: "regs"),
        Profile(name: "nice", latencyHint: "nice"),
        Profile(name: "polled", kickMode: "never", pollIntervalMicroseconds: 5000),
        Profile(name: "adaptive", kickMode: "adaptive", pollIntervalMicroseconds: 100_000),
    ]

    /// `nominal`: the table is not the host's real one (this machine has no
    /// cpufreq); false makes the daemon read scaling_cur_freq of CPU
    /// `onlineCPUs[0]` under its --sysfs-root.
    static func toml(_ profiles: [Profile] = standardProfiles, nominal: Bool = true) -> String {
        let cpus = onlineCPUs.map(String.init).joined(separator: ",")
        var text = """
            # Written by VCPUFreqServerTests.
            [host]
            name = "server-tests"
            governor = "none"

            [[host.cluster]]
            name = "cpu"
            cpus = [\(cpus)]
            capacity = 1024
            frequencies_khz = [\(tableKHz.map(String.init).joined(separator: ", "))]
            nominal = \(nominal)

            """
        for profile in profiles {
            let pins = (0..<profile.vcpus).map { "\"\(pinnedCPUs[$0 % 2][0])\"" }.joined(separator: ", ")
            text += """

                [[vm]]
                name = "\(profile.name)"
                vcpus = \(profile.vcpus)
                clusters = [\(Array(repeating: "\"cpu\"", count: profile.vcpus).joined(separator: ", "))]
                pin_cpus = [\(pins)]
                domains = [\((0..<profile.vcpus).map(String.init).joined(separator: ", "))]
                pin = \(profile.pin)
                util_cap = \(profile.utilCap)
                base_address = \(baseAddress)

                [vm.policy]
                hysteresis = 0
                min_interval_us = 0
                latency_hint = "\(profile.latencyHint)"
                latency_slice_us = \(profile.latencySliceMicroseconds)
                latency_nice = \(profile.latencyNice)
                kick_mode = "\(profile.kickMode)"
                poll_interval_us = \(profile.pollIntervalMicroseconds)

                """
        }
        return text
    }

    /// The utilization a set_perf of `kHz` (a table value) must become on
    /// this host: capacity 1024 × kHz / max, rounded to nearest, no headroom
    /// compensation (governor "none"); the formula of docs/design.md, done
    /// here in floating point.
    static func utilization(forKHz kHz: UInt32) -> Int {
        Int((1024.0 * Double(kHz) / Double(maxKHz)).rounded())
    }
}
