import Foundation

/// Package energy from RAPL (`/sys/class/powercap/*-rapl:N/energy_uj`,
/// the top-level zones), where the host exposes it: the efficiency
/// analogue of PCMark's score per mAh. Reads files only; `root` lets tests
/// use a fixture tree.
public struct EnergyMeter: Sendable {
    public let root: String

    public init(root: String = "/sys/class/powercap") { self.root = root }

    /// One reading: µJ and wrap range per zone.
    public struct Reading: Sendable, Equatable {
        public var microjoules: [String: UInt64]
        public var ranges: [String: UInt64]
    }

    /// The top-level zones (`intel-rapl:0`, not the `intel-rapl:0:0` sub-zones), sorted.
    public var zones: [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        return names.filter { name in
            guard let colon = name.firstIndex(of: ":"), name[..<colon].hasSuffix("rapl") else { return false }
            return !name[name.index(after: colon)...].contains(":")
                && FileManager.default.isReadableFile(atPath: "\(root)/\(name)/energy_uj")
        }.sorted()
    }

    /// nil where no zone is readable.
    public func read() -> Reading? {
        var reading = Reading(microjoules: [:], ranges: [:])
        for zone in zones {
            guard let value = Self.number("\(root)/\(zone)/energy_uj") else { continue }
            reading.microjoules[zone] = value
            reading.ranges[zone] = Self.number("\(root)/\(zone)/max_energy_range_uj") ?? 0
        }
        return reading.microjoules.isEmpty ? nil : reading
    }

    /// Joules from `before` to `after`, summed over the zones both have; a
    /// counter that wrapped adds its range.
    public static func joules(from before: Reading, to after: Reading) -> Double {
        var total = 0.0
        for (zone, end) in after.microjoules {
            guard let start = before.microjoules[zone] else { continue }
            let range = after.ranges[zone] ?? 0
            let delta = end >= start ? end - start : (range > start ? range - start + end : 0)
            total += Double(delta) / 1e6
        }
        return total
    }

    static func number(_ path: String) -> UInt64? {
        (try? String(contentsOfFile: path, encoding: .utf8)).flatMap {
            UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines))
        }
    }
}

/// Frequency residency from cpufreq stats
/// (`cpuN/cpufreq/stats/time_in_state`: "kHz time" lines, time in 10 ms
/// units), where the host has a cpufreq driver with stats. `root` is
/// /sys/devices/system/cpu or a fixture tree.
public struct FrequencyResidency: Sendable {
    public let root: String

    public init(root: String = "/sys/devices/system/cpu") { self.root = root }

    /// Per CPU: time (10 ms units) per frequency (kHz).
    public typealias Reading = [Int: [UInt64: UInt64]]

    /// nil where no CPU has stats.
    public func read() -> Reading? {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        var reading: Reading = [:]
        for name in names where name.hasPrefix("cpu") {
            guard let cpu = Int(name.dropFirst(3)),
                let text = try? String(contentsOfFile: "\(root)/\(name)/cpufreq/stats/time_in_state", encoding: .utf8)
            else { continue }
            var states: [UInt64: UInt64] = [:]
            for line in text.split(separator: "\n") {
                let fields = line.split(separator: " ")
                if fields.count >= 2, let kHz = UInt64(fields[0]), let time = UInt64(fields[1]) { states[kHz] = time }
            }
            if !states.isEmpty { reading[cpu] = states }
        }
        return reading.isEmpty ? nil : reading
    }

    /// The time-weighted mean frequency over every CPU from `before` to
    /// `after`, MHz; nil when no time passed in any state.
    public static func meanMegahertz(from before: Reading, to after: Reading) -> Double? {
        var weighted = 0.0
        var time = 0.0
        for (cpu, states) in after {
            for (kHz, end) in states {
                let start = before[cpu]?[kHz] ?? 0
                guard end > start else { continue }
                weighted += Double(kHz) / 1000 * Double(end - start)
                time += Double(end - start)
            }
        }
        return time > 0 ? weighted / time : nil
    }
}
