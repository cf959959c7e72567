import VCPUFreqBenchSupport

/// The topology the benchmark's daemon serves: one nominal cluster over
/// every host CPU with a seven-step table (no cpufreq driver needed: cur_perf
/// reads the same everywhere), governor "none", and one profile per way the
/// daemon is reached, both with the policy defaults a deployment has
/// (written out, so the file says what was measured). No pinning: the host
/// scheduler places the vCPU threads among the contention.
public enum WorkloadTopology {
    public static let tableKHz: [UInt32] = [600_000, 1_000_000, 1_400_000, 1_800_000, 2_200_000, 2_600_000, 3_000_000]
    public static let capacity: UInt32 = 1024
    /// High enough for the VMs' RAM (buffers of the memory loops) below it.
    public static let baseAddress: UInt64 = 0x2000_0000
    public static let registerProfile = "register"
    public static let sharedPageProfile = "shared-page"
    public static let bpfMapProfile = "bpf-map"

    /// The policy every profile has: the daemon's defaults.
    public static let policy: [(String, BenchTopologyFile.Value)] = [
        ("hysteresis", .integer(8)), ("min_interval_us", .integer(1000)), ("latency_hint", .string("slice")),
        ("latency_slice_us", .integer(300)), ("kick_mode", .string("adaptive")), ("poll_interval_us", .integer(1000)),
    ]

    /// The file for `vcpus`-vCPU VMs on a host of `cpuCount` CPUs; `kickMode`
    /// overrides the shared-page profile's kick mode (command mode).
    public static func text(cpuCount: Int, vcpus: Int, kickMode: String? = nil, writer: String = "`vcpufreq bench workload`") -> String {
        func profile(_ name: String, comment: String, kick: String?) -> BenchTopologyFile.Profile {
            var policy = Self.policy
            if let kick, let index = policy.firstIndex(where: { $0.0 == "kick_mode" }) { policy[index].1 = .string(kick) }
            return BenchTopologyFile.Profile(
                name: name, vcpus: vcpus, comment: comment,
                keys: [
                    ("clusters", .strings(Array(repeating: "cpu", count: vcpus))), ("pin", .boolean(false)),
                    ("base_address", .integer(Int(baseAddress))),
                ], policy: policy)
        }
        return BenchTopologyFile(
            comment: "Written by \(writer) for its own daemon.", hostName: "bench-workload", clusterName: "cpu",
            clusterCPUs: BenchTopologyFile.cpuList(count: cpuCount), capacity: Int(capacity),
            frequenciesKHz: tableKHz.map { Int($0) },
            profiles: [
                profile(registerProfile, comment: "vcpufreq-mmio: the upstream registers only (no shared page).", kick: nil),
                profile(sharedPageProfile, comment: "vcpufreq-shared-page (and -sched-ext): shared page, mirror, doorbells.", kick: kickMode),
                profile(bpfMapProfile, comment: "vcpufreq-bpf-map: the page as a BPF map, read in place by host BPF; no kicks, the daemon polls.",
                        kick: "scheduler"),
            ]
        ).text
    }
}
