import VCPUFreqCore

/// The host's clusters as the scheduler places by them: ranked by capacity,
/// smallest first (ties keep the topology's order), each with its CPUs.
/// Pure: built from the topology the daemon serves.
public struct SchedulerClusters: Equatable, Sendable {
    public struct Cluster: Equatable, Sendable {
        public var name: String
        /// 0...1024.
        public var capacity: Int
        public var cpus: [Int]
    }

    /// Rank = index.
    public var ranked: [Cluster]

    /// The clusters of `host`.
    /// - Throws: `SchedulerTopologyError` naming the cluster or CPU: more
    ///   than VCPUFREQ_SCHED_MAX_CLUSTERS clusters, a CPU the scheduler's
    ///   maps cannot hold, a CPU in two clusters, no cluster at all.
    public init(host: HostTopology) throws(SchedulerTopologyError) {
        guard !host.clusters.isEmpty else { throw .noClusters }
        guard host.clusters.count <= Self.maximumClusters else {
            throw .tooManyClusters(count: host.clusters.count, maximum: Self.maximumClusters)
        }
        var owner: [Int: String] = [:]
        for cluster in host.clusters {
            for cpu in cluster.cpus.ids {
                guard cpu >= 0, cpu < Self.maximumCPUs else {
                    throw .cpuOutOfRange(cluster: cluster.name, cpu: cpu, maximum: Self.maximumCPUs)
                }
                if let other = owner[cpu] { throw .cpuInTwoClusters(cpu: cpu, first: other, second: cluster.name) }
                owner[cpu] = cluster.name
            }
        }
        ranked = host.clusters.enumerated()
            .sorted { ($0.element.capacity, $0.offset) < ($1.element.capacity, $1.offset) }
            .map { Cluster(name: $0.element.name, capacity: $0.element.capacity, cpus: $0.element.cpus.ids) }
    }

    /// VCPUFREQ_SCHED_MAX_CLUSTERS and VCPUFREQ_SCHED_MAX_CPUS of vcpufreq_sched.h.
    public static let maximumClusters = 8
    public static let maximumCPUs = 1024

    /// The rank of the cluster holding `cpu`, nil when none does.
    public func rank(ofCPU cpu: Int) -> Int? {
        ranked.firstIndex { $0.cpus.contains(cpu) }
    }

    /// `little (512): 0; big (1024): 1`.
    public var description: String {
        ranked.map { "\($0.name) (\($0.capacity)): \(CPUList($0.cpus))" }.joined(separator: "; ")
    }
}

/// Why a topology cannot drive the scheduler. The description is the message.
public enum SchedulerTopologyError: Error, Equatable, Sendable, CustomStringConvertible {
    case noClusters
    case tooManyClusters(count: Int, maximum: Int)
    case cpuOutOfRange(cluster: String, cpu: Int, maximum: Int)
    case cpuInTwoClusters(cpu: Int, first: String, second: String)

    public var description: String {
        switch self {
        case .noClusters: return "the topology has no host cluster to place by"
        case .tooManyClusters(let count, let maximum):
            return "the topology has \(count) host clusters; the scheduler places by at most \(maximum)"
        case .cpuOutOfRange(let cluster, let cpu, let maximum):
            return "cluster \(cluster): CPU \(cpu) is beyond the scheduler's \(maximum) CPUs"
        case .cpuInTwoClusters(let cpu, let first, let second):
            return "CPU \(cpu) is in clusters \(first) and \(second)"
        }
    }
}
