import SystemPackage
import VCPUFreqCore

/// Reads /sys/devices/system/cpu (under any root, for fixture trees) into a
/// `SysfsSnapshot`. Thin on purpose: it opens files and lists directories;
/// `SysfsText` parses and `SysfsProbe` interprets. A missing file is simply
/// absent from the snapshot; a file that exists but cannot be read (EACCES,
/// EBUSY) is listed in `SysfsSnapshot.unreadable` so the probe can say so.
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
        var walk = Walk(base: cpuDirectory)
        let entries: [String]
        switch SysfsFiles.list(walk.base) {
        case .success(let names): entries = names
        case .failure(let error): throw ReadError(path: walk.base, reason: error.description)
        }
        let directories = CPUList(entries.compactMap { $0.hasPrefix("cpu") ? Int($0.dropFirst(3)) : nil })
        let lists = ["possible", "present", "online"].map { walk.text($0).flatMap(SysfsText.cpuList) }
        let possible = lists.compactMap { $0 }.first ?? directories
        let online = lists[2] ?? directories

        // Policies under cpufreq/policyX; without any, per-CPU cpufreq/
        // directories (kernels before 4.x). With policyX present, cpuN/cpufreq
        // are only links to them.
        var policyOfCPU: [Int: SysfsPolicy] = [:]
        let policyNames = walk.list("cpufreq").filter { $0.hasPrefix("policy") }
            .sorted { (Int($0.dropFirst(6)) ?? .max) < (Int($1.dropFirst(6)) ?? .max) }
        for name in policyNames {
            guard let policy = walk.policy("cpufreq/\(name)") else { continue }
            for cpu in policy.relatedCPUs.ids where policyOfCPU[cpu] == nil { policyOfCPU[cpu] = policy }
        }

        var cpus: [SysfsCPU] = []
        for id in directories.ids {
            let directory = "cpu\(id)"
            var cpu = SysfsCPU(id: id, isOnline: online.contains(id))
            cpu.capacity = walk.text("\(directory)/cpu_capacity").flatMap(SysfsText.integer)
            cpu.clusterID = walk.text("\(directory)/topology/cluster_id").flatMap(SysfsText.integer)
            cpu.packageID = walk.text("\(directory)/topology/physical_package_id").flatMap(SysfsText.integer)
            cpu.clusterCPUs = (walk.text("\(directory)/topology/cluster_cpus_list")
                ?? walk.text("\(directory)/topology/core_siblings_list")).flatMap(SysfsText.cpuList)
            cpu.cppc = walk.cppc("\(directory)/acpi_cppc")
            if policyNames.isEmpty, policyOfCPU[id] == nil, let policy = walk.policy("\(directory)/cpufreq") {
                for related in policy.relatedCPUs.ids where policyOfCPU[related] == nil { policyOfCPU[related] = policy }
                if policyOfCPU[id] == nil { policyOfCPU[id] = policy }
            }
            cpu.policy = policyOfCPU[id]
            cpus.append(cpu)
        }
        let cpuinfo = cpuinfoPath.flatMap { try? SysfsFiles.read($0, limit: Self.maximumCpuinfoBytes).get() }
            .flatMap(SysfsText.cpuinfoMaximumMHz)
        return SysfsSnapshot(possibleCPUs: possible, cpus: cpus, cpuinfoMaximumMHz: cpuinfo, unreadable: walk.unreadable)
    }

    /// sysfs attributes are at most a page.
    static let maximumFileBytes = 4096
    /// procfs cpuinfo grows with the CPU count (about 1.5 KiB per CPU).
    static let maximumCpuinfoBytes = 4 * 1_048_576

    /// The file's text, or nil when it cannot be opened or read.
    static func read(_ path: String) -> String? { try? SysfsFiles.read(path, limit: maximumCpuinfoBytes).get() }

    /// Entry names of a directory (without `.` and `..`), or nil.
    static func list(_ path: String) -> [String]? { try? SysfsFiles.list(path).get() }

    /// One walk of the CPU directory: reads relative paths and remembers
    /// what existed but could not be read.
    struct Walk {
        let base: String
        var unreadable: [SysfsUnreadable] = []

        init(base: String) { self.base = base }

        mutating func text(_ path: String) -> String? {
            note(SysfsFiles.read("\(base)/\(path)", limit: SysfsReader.maximumFileBytes), path)
        }

        mutating func list(_ path: String) -> [String] {
            note(SysfsFiles.list("\(base)/\(path)"), path) ?? []
        }

        /// ENOENT and ENOTDIR mean "not there": normal, not worth a note.
        private mutating func note<T>(_ result: Result<T, Errno>, _ path: String) -> T? {
            switch result {
            case .success(let value): return value
            case .failure(.noSuchFileOrDirectory), .failure(.notDirectory): return nil
            case .failure(let error):
                unreadable.append(SysfsUnreadable(path: path, reason: error.description))
                return nil
            }
        }

        /// A policy directory, or nil when it holds no readable CPU list.
        mutating func policy(_ directory: String) -> SysfsPolicy? {
            // An inactive policy (all its CPUs offline) answers EBUSY to every
            // attribute: one note for related_cpus is enough.
            let before = unreadable.count
            let relatedText = text("\(directory)/related_cpus")
            guard unreadable.count == before,
                let related = (relatedText ?? text("\(directory)/affected_cpus")).flatMap(SysfsText.cpuList)
            else { return nil }
            let integer = { (walk: inout Walk, name: String) in walk.text("\(directory)/\(name)").flatMap(SysfsText.integer) }
            var amd = SysfsAMDPState(
                highestPerformance: integer(&self, "amd_pstate_highest_perf"),
                maximumFrequencyKHz: integer(&self, "amd_pstate_max_freq"),
                lowestNonlinearFrequencyKHz: integer(&self, "amd_pstate_lowest_nonlinear_freq"),
                preferredCoreRanking: integer(&self, "amd_pstate_prefcore_ranking"))
            amd.hardwarePreferredCore = text("\(directory)/amd_pstate_hw_prefcore").flatMap(SysfsText.word).map { $0 == "enabled" }
            return SysfsPolicy(
                relatedCPUs: related,
                availableFrequenciesKHz: text("\(directory)/scaling_available_frequencies").flatMap(SysfsText.frequencies),
                minimumFrequencyKHz: integer(&self, "cpuinfo_min_freq"),
                maximumFrequencyKHz: integer(&self, "cpuinfo_max_freq"),
                governor: text("\(directory)/scaling_governor").flatMap(SysfsText.word),
                driver: text("\(directory)/scaling_driver").flatMap(SysfsText.word),
                baseFrequencyKHz: integer(&self, "base_frequency"),
                amdPState: amd == SysfsAMDPState() ? nil : amd)
        }

        /// `acpi_cppc/`, or nil when the firmware has no _CPC for the CPU.
        mutating func cppc(_ directory: String) -> SysfsCPPC? {
            let cppc = SysfsCPPC(
                highestPerformance: text("\(directory)/highest_perf").flatMap(SysfsText.integer),
                nominalPerformance: text("\(directory)/nominal_perf").flatMap(SysfsText.integer),
                lowestPerformance: text("\(directory)/lowest_perf").flatMap(SysfsText.integer),
                nominalFrequencyMHz: text("\(directory)/nominal_freq").flatMap(SysfsText.integer))
            return cppc == SysfsCPPC() ? nil : cppc
        }
    }
}
