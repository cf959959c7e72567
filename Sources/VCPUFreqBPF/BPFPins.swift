/// Where a monitor pins its maps: the one place that turns the pin setting
/// (the util-hint map's path, `--bpf-pin-path`) into the path of every
/// pinned map. Every map is pinned in the util-hint map's directory under its
/// own name, so a scheduler (sched_ext) that knows the directory finds them
/// all: `util_hint`, `vm_pages`, `vm_caps`, `vcpu_threads`, `cpu_info`
/// (bpf/vcpufreq_slot.h, docs/bpf.md).
public struct BPFPins: Equatable, Sendable {
    /// VCPUFREQ_PIN_DIRECTORY of vcpufreq_bpf.h.
    public static let defaultDirectory = "/sys/fs/bpf/vcpufreq"
    /// Maps pinned, in the order they are pinned.
    public static let mapNames = [
        LibBPF.utilHintMapName, LibBPF.vmPagesMapName, LibBPF.vmCapsMapName, LibBPF.vcpuThreadsMapName,
        LibBPF.cpuInfoMapName,
    ]

    /// The util-hint map's pin path; the others are its siblings.
    public var utilHintPath: String

    public init(utilHintPath: String) {
        self.utilHintPath = utilHintPath
    }

    /// The directory every map is pinned in.
    public var directory: String {
        guard let slash = utilHintPath.lastIndex(of: "/") else { return "." }
        let parent = String(utilHintPath[..<slash])
        return parent.isEmpty ? "/" : parent
    }

    /// The pin path of map `name` (the util-hint map keeps its configured name).
    public func path(of name: String) -> String {
        name == LibBPF.utilHintMapName ? utilHintPath : (directory == "/" ? "" : directory) + "/" + name
    }
}
