/// The topology file a benchmark writes for the daemon it starts
/// (docs/topology.md): one host cluster over the CPUs it measures on, with
/// a nominal frequency table (no cpufreq driver needed, so every host
/// serves the same values), and the VM profiles the benchmark attaches
/// with. Each benchmark states its policy keys; this only writes TOML.
public struct BenchTopologyFile: Sendable, Equatable {
    /// A TOML value as the topology keys need them.
    public enum Value: Sendable, Equatable {
        case string(String)
        case integer(Int)
        case boolean(Bool)
        case strings([String])
        case integers([Int])

        var toml: String {
            switch self {
            case .string(let text): return Self.quoted(text)
            case .integer(let number): return String(number)
            case .boolean(let flag): return flag ? "true" : "false"
            case .strings(let texts): return "[" + texts.map(Self.quoted).joined(separator: ", ") + "]"
            case .integers(let numbers): return "[" + numbers.map(String.init).joined(separator: ", ") + "]"
            }
        }

        static func quoted(_ text: String) -> String {
            "\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
        }
    }

    /// One `[[vm]]` profile: its own keys (besides name and vcpus) and its `[vm.policy]` keys, in order.
    public struct Profile: Sendable, Equatable {
        public var name: String
        public var vcpus: Int
        /// A comment line above the profile, if any.
        public var comment: String?
        public var keys: [(String, Value)]
        public var policy: [(String, Value)]

        public init(name: String, vcpus: Int, comment: String? = nil, keys: [(String, Value)], policy: [(String, Value)]) {
            self.name = name
            self.vcpus = vcpus
            self.comment = comment
            self.keys = keys
            self.policy = policy
        }

        public static func == (l: Profile, r: Profile) -> Bool {
            l.name == r.name && l.vcpus == r.vcpus && l.comment == r.comment
                && l.keys.elementsEqual(r.keys, by: { $0.0 == $1.0 && $0.1 == $1.1 })
                && l.policy.elementsEqual(r.policy, by: { $0.0 == $1.0 && $0.1 == $1.1 })
        }
    }

    /// The first comment line: who wrote the file.
    public var comment: String
    public var hostName: String
    /// `[host] governor`: "none" unless the benchmark models a host governor.
    public var governor: String = "none"
    /// `[host] cpus`, when the benchmark states them.
    public var hostCPUs: String?
    public var clusterName: String
    public var clusterCPUs: String
    public var capacity: Int
    public var frequenciesKHz: [Int]
    public var profiles: [Profile]

    public init(
        comment: String, hostName: String, governor: String = "none", hostCPUs: String? = nil, clusterName: String,
        clusterCPUs: String, capacity: Int, frequenciesKHz: [Int], profiles: [Profile]
    ) {
        self.comment = comment
        self.hostName = hostName
        self.governor = governor
        self.hostCPUs = hostCPUs
        self.clusterName = clusterName
        self.clusterCPUs = clusterCPUs
        self.capacity = capacity
        self.frequenciesKHz = frequenciesKHz
        self.profiles = profiles
    }

    /// CPUs 0…count−1 in the sysfs list form ("0-1", or "0").
    public static func cpuList(count: Int) -> String { count > 1 ? "0-\(count - 1)" : "0" }

    /// The TOML text.
    public var text: String {
        var lines = ["# \(comment)", "[host]", "name = \(Value.quoted(hostName))", "governor = \(Value.quoted(governor))"]
        if let hostCPUs { lines.append("cpus = \(Value.quoted(hostCPUs))") }
        lines += [
            "", "[[host.cluster]]", "name = \(Value.quoted(clusterName))", "cpus = \(Value.quoted(clusterCPUs))",
            "capacity = \(capacity)", "frequencies_khz = \(Value.integers(frequenciesKHz).toml)", "nominal = true",
        ]
        for profile in profiles {
            lines.append("")
            if let comment = profile.comment { lines.append("# \(comment)") }
            lines += ["[[vm]]", "name = \(Value.quoted(profile.name))", "vcpus = \(profile.vcpus)"]
            lines += profile.keys.map { "\($0.0) = \($0.1.toml)" }
            if !profile.policy.isEmpty {
                lines.append("[vm.policy]")
                lines += profile.policy.map { "\($0.0) = \($0.1.toml)" }
            }
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
