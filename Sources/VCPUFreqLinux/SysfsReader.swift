import Glibc
import VCPUFreqCore

/// Reads /sys/devices/system/cpu (under any root, for fixture trees) into a
/// `SysfsSnapshot`. Thin on purpose: it opens files and lists directories;
/// `SysfsText` parses and `SysfsProbe` interprets.
public struct SysfsReader: Sendable {
    /// Directory that holds `devices/system/cpu` (`/sys` on a live host).
    public var root: String
    /// /proc/cpuinfo, for a nominal table on hosts without cpufreq; nil = don't read.
    public var cpuinfoPath: String?

    public init(root: String = "/sys", cpuinfoPath: String? = "/proc/cpuinfo") {
        self.root = root
        self.cpuinfoPath = cpuinfoPath
    }

    /// The CPU directory this reader walks.
    public var cpuDirectory: String { "\(root)/devices/system/cpu" }

    /// Why the CPU directory could not be read; the description is the message.
    public struct ReadError: Error, CustomStringConvertible {
        public var path: String
        public var reason: String
        public var description: String { "cannot read \(path): \(reason)" }
    }

    public func snapshot() throws(ReadError) -> SysfsSnapshot {
        let base = cpuDirectory
        guard let entries = Self.list(base) else {
            throw ReadError(path: base, reason: String(cString: strerror(errno)))
        }
        let possible = ["possible", "present", "online"].lazy.compactMap { Self.read("\(base)/\($0)").flatMap(SysfsText.cpuList) }.first
            ?? CPUList(entries.compactMap { name in name.hasPrefix("cpu") ? Int(name.dropFirst(3)) : nil })

        // Policies under cpufreq/policyX, then per-CPU cpufreq/ directories
        // (older kernels, or a driver that made no policy links).
        var policyOfCPU: [Int: SysfsPolicy] = [:]
        for name in (Self.list("\(base)/cpufreq") ?? []).sorted() where name.hasPrefix("policy") {
            guard let policy = readPolicy("\(base)/cpufreq/\(name)") else { continue }
            for cpu in policy.relatedCPUs.ids where policyOfCPU[cpu] == nil { policyOfCPU[cpu] = policy }
        }

        var cpus: [SysfsCPU] = []
        for id in possible.ids {
            let directory = "\(base)/cpu\(id)"
            var cpu = SysfsCPU(id: id)
            cpu.capacity = Self.read("\(directory)/cpu_capacity").flatMap(SysfsText.integer)
            cpu.clusterID = Self.read("\(directory)/topology/cluster_id").flatMap(SysfsText.integer)
            cpu.packageID = Self.read("\(directory)/topology/physical_package_id").flatMap(SysfsText.integer)
            cpu.clusterCPUs = (Self.read("\(directory)/topology/cluster_cpus_list")
                ?? Self.read("\(directory)/topology/core_siblings_list")).flatMap(SysfsText.cpuList)
            if policyOfCPU[id] == nil, let policy = readPolicy("\(directory)/cpufreq") {
                for related in policy.relatedCPUs.ids where policyOfCPU[related] == nil { policyOfCPU[related] = policy }
                if policyOfCPU[id] == nil { policyOfCPU[id] = policy }
            }
            cpu.policy = policyOfCPU[id]
            cpus.append(cpu)
        }
        let cpuinfo = cpuinfoPath.flatMap(Self.read).flatMap(SysfsText.cpuinfoMaximumMHz)
        return SysfsSnapshot(possibleCPUs: possible, cpus: cpus, cpuinfoMaximumMHz: cpuinfo)
    }

    /// A policy directory, or nil when it holds no CPU list.
    func readPolicy(_ directory: String) -> SysfsPolicy? {
        guard let related = (Self.read("\(directory)/related_cpus") ?? Self.read("\(directory)/affected_cpus"))
            .flatMap(SysfsText.cpuList)
        else { return nil }
        return SysfsPolicy(
            relatedCPUs: related,
            availableFrequenciesKHz: Self.read("\(directory)/scaling_available_frequencies").flatMap(SysfsText.frequencies),
            minimumFrequencyKHz: Self.read("\(directory)/cpuinfo_min_freq").flatMap(SysfsText.integer),
            maximumFrequencyKHz: Self.read("\(directory)/cpuinfo_max_freq").flatMap(SysfsText.integer),
            governor: Self.read("\(directory)/scaling_governor").flatMap(SysfsText.word))
    }

    /// sysfs attributes are at most a page; procfs cpuinfo grows with the
    /// CPU count (about 1.5 KiB per CPU), so allow 4 MiB before giving up.
    static let maximumFileBytes = 4 * 1_048_576

    /// The file's text, or nil when it cannot be opened or read.
    static func read(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= maximumFileBytes {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
            if count == 0 { return String(decoding: bytes, as: UTF8.self) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return nil
    }

    /// Entry names of a directory (without `.` and `..`), or nil with errno set.
    static func list(_ path: String) -> [String]? {
        guard let directory = opendir(path) else { return nil }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}
