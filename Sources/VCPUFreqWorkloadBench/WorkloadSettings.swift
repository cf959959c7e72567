/// How long and how hard `vcpufreq bench workload` measures. `full` is what
/// the published table comes from; `quick` keeps the structure (every test,
/// every configuration, interleaved rounds) in seconds, for the smoke test.
public struct WorkloadSettings: Sendable, Equatable {
    public var configurations: [WorkloadConfiguration] = WorkloadConfiguration.allCases
    public var tests: [WorkloadTest] = WorkloadTest.allCases
    public var rounds: Int
    /// Each test's program per vCPU, nominal seconds.
    public var secondsPerTest: Double
    public var contention: Contention
    /// vCPUs of every VM (default: the host's CPUs, at most 4).
    public var vcpus: Int?
    public var seed: UInt64 = 0x00C0_FFEE_5EED
    /// Each vCPU's buffer of the memory loops: larger than the last-level
    /// cache of common hosts, so the loops are memory-bound.
    public var bufferBytes: UInt64
    /// The guest kernel's scheduler tick (HZ=250), each a cur_perf read.
    public var tickMicroseconds = 4_000.0
    /// PELT's period (Linux: 1024 µs).
    public var peltPeriodMicroseconds = 1_024.0
    /// schedutil's rate limit between two requests (about 1 ms for fast switching drivers).
    public var rateLimitMicroseconds = 1_000.0
    /// Idles shorter than this are polled, not slept (a cpuidle governor's poll state).
    public var idleMinimumMicroseconds = 50.0
    /// Pause between two runs, so that a daemon still polling after one run does not bill the next.
    public var settleMilliseconds = 20
    /// Extra `serve` options for the benchmark's daemon.
    public var daemonArguments: [String] = []
    public var isQuick = false
    /// Every job's times × this (`TestProgram.generate`); 1 except in quick mode.
    public var timeScale = 1.0

    public init(rounds: Int, secondsPerTest: Double, contention: Contention, bufferBytes: UInt64) {
        self.rounds = rounds
        self.secondsPerTest = secondsPerTest
        self.contention = contention
        self.bufferBytes = bufferBytes
    }

    /// About 5 minutes on a 2-CPU machine under heavy contention.
    public static let full = WorkloadSettings(rounds: 5, secondsPerTest: 2, contention: .heavy, bufferBytes: 32 << 20)

    /// Seconds: two rounds of short programs, no contention (the smoke test
    /// checks structure and counters, not contention; CPU hogs on a shared
    /// 2-CPU machine made it take 36 s instead of 16; `--contention` still
    /// applies).
    public static var quick: WorkloadSettings {
        var settings = WorkloadSettings(rounds: 2, secondsPerTest: 0.05, contention: .none, bufferBytes: 4 << 20)
        settings.settleMilliseconds = 5
        settings.isQuick = true
        settings.timeScale = 0.25
        return settings
    }

    /// The vCPU count for a host of `cpuCount` CPUs.
    public func vcpuCount(cpuCount: Int) -> Int { vcpus ?? min(max(cpuCount, 1), 4) }

    /// The programs of one round (one per test), the same for every configuration.
    public func programs(round: Int, vcpuCount: Int) -> [TestProgram] {
        tests.map { test in
            TestProgram.generate(
                test: test, vcpuCount: vcpuCount, seconds: secondsPerTest,
                seed: SplitMix64.derive(seed, UInt64(WorkloadTest.allCases.firstIndex(of: test) ?? 0), UInt64(round)),
                timeScale: timeScale)
        }
    }
}
