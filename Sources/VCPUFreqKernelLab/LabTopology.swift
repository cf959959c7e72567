/// The topology the lab's daemons serve: the 2-CPU QEMU guest as a
/// big.LITTLE host (CPU 0 "big", CPU 1 "little", nominal tables), and VM
/// profiles with no hysteresis or rate limit, so every request's hint is
/// applied at once and read back exactly.
public enum LabTopology {
    /// Latency hints of the profiles.
    public static let sliceMicroseconds: UInt32 = 400
    public static let latencyNice: Int32 = -7

    /// - `lab`: vCPU 0 models big and is pinned to CPU 0, vCPU 1 models little on CPU 1; slice hints.
    /// - `nice`: the same with nice hints.
    /// - `held`: one vCPU that models little but is pinned onto the big CPU: util_max must hold it down.
    public static let toml = """
        # Written by the kernel lab (scripts/test-kernels): a 2-CPU guest as a big.LITTLE host.
        [host]
        name = "kernel-lab"
        governor = "none"
        cpus = "0-1"

        [[host.cluster]]
        name = "big"
        cpus = "0"
        capacity = 1024
        frequencies_khz = [1000000, 1500000, 2000000]
        nominal = true

        [[host.cluster]]
        name = "little"
        cpus = "1"
        capacity = 512
        frequencies_khz = [500000, 750000, 1000000]
        nominal = true
        \(profile("lab", clusters: ["big", "little"], pins: ["0", "1"], latency: "slice"))
        \(profile("nice", clusters: ["big", "little"], pins: ["0", "1"], latency: "nice"))
        \(profile("held", clusters: ["little"], pins: ["0"], latency: "slice"))
        """

    static func profile(_ name: String, clusters: [String], pins: [String], latency: String) -> String {
        func list(_ items: [String]) -> String { "[" + items.map { "\"\($0)\"" }.joined(separator: ", ") + "]" }
        return """

            [[vm]]
            name = "\(name)"
            vcpus = \(clusters.count)
            clusters = \(list(clusters))
            pin_cpus = \(list(pins))
            domains = [\(clusters.indices.map(String.init).joined(separator: ", "))]
            pin = true
            util_cap = 1024
            base_address = 0x2000000

            [vm.policy]
            hysteresis = 0
            min_interval_us = 0
            latency_hint = "\(latency)"
            latency_slice_us = \(sliceMicroseconds)
            latency_nice = \(latencyNice)
            kick_mode = "always"
            """
    }
}
