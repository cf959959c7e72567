/// The topology the benchmark's own daemon serves, and the requests every
/// path sends, so that all paths ask for exactly the same thing.
///
/// One nominal cluster over every host CPU (no cpufreq driver needed, so
/// `cur_perf` and the expected hints are the same on any host), governor
/// "none" (no schedutil headroom factor), and one profile per way the
/// daemon is reached. Every profile has hysteresis 0 and no rate limit, so
/// every request changes the applied hint and nothing is held back; none
/// pins (the benchmark places threads itself, see `Placement`).
public enum BenchTopology {
    /// The cluster's table, kHz. Requests alternate between its top and bottom.
    public static let frequenciesKHz: [UInt32] = [1_000_000, 2_000_000, 3_000_000]
    public static let capacity: UInt32 = 1024
    /// Request A: the top of the table (util_min 1024).
    public static let requestA: UInt32 = 3_000_000
    /// Request B: the bottom (util_min 341): far from A, every request is a change.
    public static let requestB: UInt32 = 1_000_000
    /// Sent once before each timed loop and awaited: a value the loop never
    /// sends, so once its hint shows, nothing older is still queued.
    public static let primer: UInt32 = 2_000_000

    /// Profile names.
    public static let kickedProfile = "kicked"
    public static let polledProfile = "polled"
    public static let schedulerProfile = "scheduler"

    /// Path 5's daemon poll interval: its requests reach the host's BPF
    /// programs, not the daemon, which polls the slot only for what needs a
    /// system call; once a second keeps its wake-ups out of the numbers.
    public static let schedulerPollIntervalMicroseconds = 1_000_000

    /// Path 5 asks for utilizations (what `sched_seen` reports) equal to the
    /// util_min of requests A and B, so that every path asks for the same.
    public static var utilizationA: UInt32 { utilMin(forKHz: requestA) }
    public static var utilizationB: UInt32 { utilMin(forKHz: requestB) }

    /// The util_min the daemon applies for a request of `kHz`: the design's
    /// formula `capacity × perf / fmax`, rounded to nearest, no headroom
    /// factor (governor "none"). Written out here rather than taken from the
    /// policy code: a daemon that disagreed would leave the guest's waits
    /// unanswered, and the benchmark would report them abandoned.
    public static func utilMin(forKHz kHz: UInt32) -> UInt32 {
        let maximum = UInt64(frequenciesKHz.last ?? 1)
        let performance = min(UInt64(kHz), maximum)
        return UInt32((UInt64(capacity) * performance + maximum / 2) / maximum)
    }

    /// The TOML file for a host with `cpuCount` CPUs.
    public static func text(cpuCount: Int, pollIntervalMicroseconds: Int) -> String {
        let cpus = cpuCount > 1 ? "0-\(cpuCount - 1)" : "0"
        let table = frequenciesKHz.map(String.init).joined(separator: ", ")
        return """
            # Written by `vcpufreq bench doorbell` for its own daemon.
            [host]
            name = "bench"
            governor = "none"

            [[host.cluster]]
            name = "cpu"
            cpus = "\(cpus)"
            capacity = \(capacity)
            frequencies_khz = [\(table)]
            nominal = true

            \(profile(kickedProfile, "Paths 2 and 3: the daemon always wants the doorbell rung.", kickMode: "always"))
            \(profile(polledProfile, "Path 4: kicks suppressed for good; the daemon reads the slot every poll interval.",
                      kickMode: "never", pollIntervalMicroseconds: pollIntervalMicroseconds))
            \(profile(schedulerProfile, "Path 5: a BPF-map page; the host's BPF programs read its requests, kicks are off, the daemon polls once a second.",
                      kickMode: "scheduler", pollIntervalMicroseconds: schedulerPollIntervalMicroseconds))
            """
    }

    /// One `[[vm]]` of one vCPU over the cluster, no dead band, no rate limit, not pinned.
    static func profile(_ name: String, _ comment: String, kickMode: String, pollIntervalMicroseconds: Int? = nil) -> String {
        var lines = [
            "# \(comment)", "[[vm]]", "name = \"\(name)\"", "vcpus = 1", "clusters = [\"cpu\"]", "pin = false",
            "[vm.policy]", "hysteresis = 0", "min_interval_us = 0", "kick_mode = \"\(kickMode)\"",
        ]
        if let pollIntervalMicroseconds { lines.append("poll_interval_us = \(pollIntervalMicroseconds)") }
        return lines.joined(separator: "\n") + "\n"
    }
}
