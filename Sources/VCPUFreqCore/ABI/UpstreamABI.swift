/// The register map of Linux's `virtual-cpufreq` driver
/// (drivers/cpufreq/virtual-cpufreq.c, compatible `qemu,virtual-cpufreq`,
/// merged for 6.13). One 0x1000-byte window per guest CPU at
/// `base + cpu * 0x1000`; every register is 32 bits wide.
public enum UpstreamABI {
    /// `PER_CPU_OFFSET` in the driver.
    public static let windowSize: UInt64 = 0x1000
    /// Every register is accessed with readl/writel.
    public static let registerWidth = 4
    /// `PERFTBL_MAX_ENTRIES`: the driver refuses to probe when any CPU reports
    /// more (or 0) entries, so a table longer than this is a topology error.
    public static let maximumTableEntries = 64
    /// DT compatible string of the device node.
    public static let compatible = "qemu,virtual-cpufreq"

    /// Register offsets within a window.
    public enum Register: UInt64, CaseIterable, Sendable {
        /// R: current performance of this vCPU, kHz scale. Read on every
        /// scheduler tick for frequency invariance.
        case curPerf = 0x00
        /// W: requested performance, kHz scale (fast switch from the vCPU itself).
        case setPerf = 0x04
        /// R: table entries; 1 = no table: entry 0 is max perf and the guest may ask for 1...max.
        case perftblLen = 0x08
        /// W: index of the table entry `perftbl_rd` returns.
        case perftblSel = 0x0c
        /// R: table entry at `perftbl_sel`.
        case perftblRd = 0x10
        /// R: vCPUs with equal values share one cpufreq policy.
        case perfDomain = 0x14

        public var isReadable: Bool {
            switch self {
            case .curPerf, .perftblLen, .perftblRd, .perfDomain: return true
            case .setPerf, .perftblSel: return false
            }
        }

        public var name: String {
            switch self {
            case .curPerf: return "cur_perf"
            case .setPerf: return "set_perf"
            case .perftblLen: return "perftbl_len"
            case .perftblSel: return "perftbl_sel"
            case .perftblRd: return "perftbl_rd"
            case .perfDomain: return "perf_domain"
            }
        }
    }
}

/// Per-vCPU register windows for utilization hints: the 2023 RFC's
/// util_hint / get_cur_cpufreq / get_freqtbl hypercalls (and crosvm's first
/// virtual cpufreq device) expressed as MMIO registers. Our own layout,
/// documented in docs/abi.md; 0x1000-byte windows, 32-bit registers.
public enum UtilHintABI {
    public static let windowSize: UInt64 = 0x1000
    public static let registerWidth = 4
    /// Highest utilization a guest may write: 1024 is the highest
    /// performance point across all CPUs of the host.
    public static let maximumUtilization: UInt32 = 1024
    /// DT compatible string of the device node.
    public static let compatible = "vcpufreq,util-hint"

    public enum Register: UInt64, CaseIterable, Sendable {
        /// W: utilization hint 0...1024 for this vCPU.
        case utilHint = 0x00
        /// R: current frequency of the host CPUs this vCPU runs on, kHz.
        case curFreq = 0x04
        /// R: entries of this vCPU's frequency table (1...64).
        case freqtblLen = 0x08
        /// W: index of the entry `freqtbl_rd` returns.
        case freqtblSel = 0x0c
        /// R: frequency table entry at `freqtbl_sel`, kHz.
        case freqtblRd = 0x10
        /// R: capacity (0...1024) of the host cluster this vCPU models.
        case capacity = 0x14
        /// R: highest utilization the host will grant this VM (its cap).
        case utilCap = 0x18
        /// R: util_min currently applied to this vCPU's thread (0 = none).
        case appliedUtil = 0x1c

        public var isReadable: Bool {
            switch self {
            case .utilHint, .freqtblSel: return false
            default: return true
            }
        }

        public var name: String {
            switch self {
            case .utilHint: return "util_hint"
            case .curFreq: return "cur_freq"
            case .freqtblLen: return "freqtbl_len"
            case .freqtblSel: return "freqtbl_sel"
            case .freqtblRd: return "freqtbl_rd"
            case .capacity: return "capacity"
            case .utilCap: return "util_cap"
            case .appliedUtil: return "applied_util"
            }
        }
    }
}
