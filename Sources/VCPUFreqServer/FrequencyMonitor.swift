import SystemPackage
import VCPUFreqCore

/// The host's current frequency per cluster, cached: refreshed from
/// `scaling_cur_freq` at an interval when the host has cpufreq, otherwise
/// the cluster's nominal maximum for good. A guest's cur_perf read (every
/// tick of every vCPU) never touches sysfs.
final class FrequencyMonitor {
    /// Current kHz per host cluster.
    private(set) var clusterKHz: [UInt32]
    /// Open `scaling_cur_freq` per cluster; nil where the cluster has no
    /// cpufreq policy (or a nominal table).
    private let files: [FileDescriptor?]
    private var buffer = [UInt8](repeating: 0, count: 32)
    private(set) var readErrors: UInt64 = 0

    init(host: HostTopology, sysfsRoot: String) {
        clusterKHz = host.clusters.map { UInt32(clamping: $0.maxFrequencyKHz) }
        files = host.clusters.map { cluster in
            guard !cluster.isNominal, let cpu = cluster.cpus.ids.first else { return nil }
            let path = FilePath("\(sysfsRoot)/devices/system/cpu/cpu\(cpu)/cpufreq/scaling_cur_freq")
            return try? FileDescriptor.open(path, .readOnly, options: [.closeOnExec])
        }
        _ = refresh()
    }

    deinit {
        for file in files { try? file?.close() }
    }

    /// True when at least one cluster's frequency can change.
    var isLive: Bool { files.contains { $0 != nil } }

    /// Re-reads every live cluster; returns true when any value changed.
    func refresh() -> Bool {
        var changed = false
        for (cluster, file) in files.enumerated() {
            guard let file, let kHz = read(file) else { continue }
            if clusterKHz[cluster] != kHz {
                clusterKHz[cluster] = kHz
                changed = true
            }
        }
        return changed
    }

    /// One pread of a sysfs integer; nil (counted) on any failure.
    private func read(_ file: FileDescriptor) -> UInt32? {
        let count: Int
        do {
            count = try buffer.withUnsafeMutableBytes { try file.read(fromAbsoluteOffset: 0, into: $0) }
        } catch {
            readErrors &+= 1
            return nil
        }
        var value: UInt64 = 0
        var digits = 0
        for byte in buffer[0..<count] {
            guard byte >= 0x30, byte <= 0x39 else { break }
            value = value &* 10 &+ UInt64(byte - 0x30)
            digits += 1
        }
        guard digits > 0, digits <= 10 else {
            readErrors &+= 1
            return nil
        }
        return UInt32(clamping: value)
    }
}
