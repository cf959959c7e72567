/// Host threads competing with the vCPU threads for their CPUs during the
/// whole run (`CPUHogs`: spinning, SCHED_NORMAL nice 0, pinned one set per
/// CPU). For scale, measured on the development machine: with one hog per
/// CPU a periodically waking thread's p99 wake-up delay is ≈ 60 µs with or
/// without a slice hint; with four it is 3.8 ms, and 0.83 ms with a 100 µs
/// EEVDF slice — heavy contention is where latency hints act.
public enum Contention: String, CaseIterable, Codable, Sendable {
    case none
    /// One hog per CPU.
    case light
    /// Four hogs per CPU.
    case heavy

    public var hogsPerCPU: Int {
        switch self {
        case .none: return 0
        case .light: return 1
        case .heavy: return 4
        }
    }

    /// The report's sentence, for a host with `cpuCount` CPUs.
    public func description(cpuCount: Int) -> String {
        guard hogsPerCPU > 0 else { return "none: nothing but the benchmark, the daemon and the machine's own load" }
        let hogs = hogsPerCPU * cpuCount
        return "\(rawValue): \(hogsPerCPU) CPU hog\(hogsPerCPU == 1 ? "" : "s") per CPU (\(hogs) in all), threads that "
            + "only spin, SCHED_NORMAL nice 0, each pinned to its CPU, running through every configuration's runs: "
            + "a vCPU thread shares its CPU with \(hogsPerCPU) of them and waits for one to be preempted when it wakes"
    }
}
