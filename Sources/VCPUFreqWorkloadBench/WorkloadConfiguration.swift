/// The six configurations a guest run compares, interleaved round by
/// round with the same programs (bench/workload.md):
public enum WorkloadConfiguration: String, CaseIterable, Codable, Sendable {
    /// No device: the guest estimates its utilization and sends nothing,
    /// reads no cur_perf (no frequency invariance).
    case baseline
    /// The upstream registers handled in the VMM's vCPU thread, crosvm's
    /// way (`InProcessDevice`): set_perf is an MMIO exit whose handler calls
    /// sched_setattr on its own thread; cur_perf an MMIO exit answered from
    /// a cached value.
    case crosvmStyle = "crosvm-style"
    /// The upstream registers forwarded to the daemon (the register path:
    /// no shared page, no mirror): set_perf a posted WRITE, cur_perf a READ
    /// round trip, both MMIO exits.
    case vcpufreqMMIO = "vcpufreq-mmio"
    /// The shared page: schedutil's level and the latency flag of
    /// interactive jobs published in the vCPU's slot, the doorbell rung
    /// when the daemon asks (`kick_mode = "adaptive"`), cur_perf loaded
    /// from the read-only mirror (no exit).
    case vcpufreqSharedPage = "vcpufreq-shared-page"
    /// As `vcpufreqSharedPage`, with the daemon's sched_ext scheduler
    /// loaded (`serve --scheduler sched-ext`), where the kernel has sched_ext.
    case vcpufreqSchedExt = "vcpufreq-sched-ext"
    /// The shared page as a BPF map (issue 16): the guest publishes its
    /// estimate itself (the slot's utilization field, `utilValid`, and the
    /// latency flag of interactive jobs) at every update, never kicks
    /// (`kick_mode = "scheduler"`); the host's BPF programs read the slot
    /// in place at the vCPU thread's scheduling events and the daemon polls
    /// it for what needs a system call (the clamp, the slice); cur_perf from
    /// the mirror. Attached only while it runs (its daemon polls).
    case vcpufreqBPFMap = "vcpufreq-bpf-map"

    public var name: String { rawValue }

    /// One line for the report.
    public var summary: String {
        switch self {
        case .baseline: return "no device: the guest sends nothing"
        case .crosvmStyle: return "MMIO exit handled in the VMM's vCPU thread (sched_setattr on itself)"
        case .vcpufreqMMIO: return "MMIO forwarded to the daemon (register path; cur_perf by READ)"
        case .vcpufreqSharedPage: return "shared page + adaptive kicks, cur_perf from the mirror"
        case .vcpufreqSchedExt: return "shared page + adaptive kicks + the sched_ext scheduler"
        case .vcpufreqBPFMap: return "shared page as a BPF map: utilization read in place by host BPF, no kicks, daemon polls"
        }
    }

    /// Served by the benchmark's daemon.
    public var usesDaemon: Bool { self != .baseline && self != .crosvmStyle }

    /// Built for each run and torn down after it (not attached through the others' runs).
    public var isPerRun: Bool { self == .vcpufreqSchedExt || self == .vcpufreqBPFMap }

    /// Parses a comma-separated list of names.
    /// - Throws: a message naming the unknown entry and the known names.
    public static func list(_ text: String) throws(WorkloadBenchError) -> [WorkloadConfiguration] {
        var result: [WorkloadConfiguration] = []
        for item in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !item.isEmpty {
            guard let configuration = WorkloadConfiguration(rawValue: item) else {
                throw .usage("--configurations: unknown configuration \"\(item)\" (known: "
                    + allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            if !result.contains(configuration) { result.append(configuration) }
        }
        guard !result.isEmpty else { throw .usage("--configurations: no configuration named") }
        return result
    }
}
