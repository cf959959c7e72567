import VCPUFreqLinux

/// One daemon instance, named by its state directory: the names of
/// everything the daemon creates that another instance must not touch are
/// derived from it. The state directory is the instance because the restore
/// journal is: the next daemon on a directory recovers the journal there,
/// and must find the same BPF pins (to delete a killed daemon's hints) and
/// the same cgroup subtree.
///
/// The default state directory keeps the documented names
/// (`/sys/fs/bpf/vcpufreq/util_hint`, cgroup `vcpufreq`); any other is
/// instance `<last component>-<16 hex digits of FNV-1a 64 of its path>`,
/// e.g. `state-5f0c3b3e1a2d9c47`, with pins in
/// `/sys/fs/bpf/vcpufreq-<name>/` and groups under `vcpufreq-<name>`. The
/// derivation only keeps instances apart by default; exclusivity is the
/// locks' (`InstanceLocks`), so even two names that collided would be
/// refused, not shared.
///
/// Pure: no I/O (the working directory is a parameter).
public struct DaemonInstance: Equatable, Sendable {
    public static let defaultStateDirectory = "/run/vcpufreq"
    /// VCPUFREQ_UTIL_HINT_PIN_PATH's directory, and the cgroup parent of the default instance.
    static let baseName = "vcpufreq"
    static let bpffs = "/sys/fs/bpf"

    /// Absolute and lexically normal (no `.`, `..`, `//` or trailing `/`;
    /// symlinks are not resolved: two spellings of one directory get two
    /// names, and the state lock still refuses the second daemon).
    public let stateDirectory: String
    /// nil for the default state directory.
    public let name: String?

    public init(stateDirectory: String, workingDirectory: String = "/") {
        let absolute = stateDirectory.hasPrefix("/") ? stateDirectory : workingDirectory + "/" + stateDirectory
        let normal = Self.normalize(absolute)
        self.stateDirectory = normal
        if normal == Self.defaultStateDirectory {
            name = nil
        } else {
            let last = normal.split(separator: "/").last.map(String.init) ?? "root"
            // A name fit for bpffs and cgroupfs, as the cgroup actuator makes VM names.
            let label = String(CgroupUclampActuator.safeComponent(last).prefix(32))
            let hash = String(Self.fnv1a64(normal), radix: 16)
            name = label + "-" + String(repeating: "0", count: 16 - hash.count) + hash
        }
    }

    /// The state directory's lock file.
    public var lockPath: String { stateDirectory + "/daemon.lock" }
    /// Where the daemon records the BPF maps it pinned, for the next daemon of the instance.
    public var pinRecordPath: String { stateDirectory + "/bpf-pins" }
    /// `vcpufreq` or `vcpufreq-<name>`.
    public var qualifiedName: String { name.map { Self.baseName + "-" + $0 } ?? Self.baseName }
    /// The cgroup (below the cgroup2 root) whose subtree holds the instance's VM groups.
    public var cgroupParent: String { qualifiedName }
    /// The directory of the instance's BPF pins.
    public var pinDirectory: String { Self.bpffs + "/" + qualifiedName }
    /// Where the instance pins the util-hint map when `--bpf-pin-path` does not say.
    public var utilHintPinPath: String { pinDirectory + "/util_hint" }

    /// Removes `.`, empty components and `..` (with the component before it).
    static func normalize(_ path: String) -> String {
        var components: [Substring] = []
        for component in path.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": if !components.isEmpty { components.removeLast() }
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// FNV-1a, 64 bits, over the UTF-8 bytes.
    static func fnv1a64(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return hash
    }
}
