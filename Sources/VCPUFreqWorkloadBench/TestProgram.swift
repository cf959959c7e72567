/// One job of a test program, in nominal microseconds: what the guest's
/// WORKLOAD op runs (`WorkloadParameters.Job` once calibrated), and what its
/// record is scored against.
public struct JobSpec: Sendable, Equatable, Codable {
    /// Latency-sensitive work: the guest's driver flags it (the shared
    /// page's latency flag) while it runs and through the idle after it.
    public var interactive: Bool
    /// `releaseMicroseconds` counts from the test's start (a frame clock),
    /// else from the previous job's end (think time).
    public var absoluteRelease: Bool
    public var releaseMicroseconds: Double
    /// Busy loop, µs at the calibrated speed of the guest's SPIN.
    public var computeMicroseconds: Double
    /// Read-modify-writes of random cache lines of the vCPU's buffer, µs at
    /// the calibrated rate.
    public var memoryMicroseconds: Double
    /// Release → end must stay within this for the job to count as met; nil
    /// for jobs without a deadline.
    public var deadlineMicroseconds: Double?

    public init(
        interactive: Bool, absoluteRelease: Bool, releaseMicroseconds: Double, computeMicroseconds: Double,
        memoryMicroseconds: Double = 0, deadlineMicroseconds: Double? = nil
    ) {
        self.interactive = interactive
        self.absoluteRelease = absoluteRelease
        self.releaseMicroseconds = releaseMicroseconds
        self.computeMicroseconds = computeMicroseconds
        self.memoryMicroseconds = memoryMicroseconds
        self.deadlineMicroseconds = deadlineMicroseconds
    }

    public var workMicroseconds: Double { computeMicroseconds + memoryMicroseconds }

    /// Every time of the job (release, work, deadline) × `factor`.
    public func scaled(by factor: Double) -> JobSpec {
        JobSpec(
            interactive: interactive, absoluteRelease: absoluteRelease, releaseMicroseconds: releaseMicroseconds * factor,
            computeMicroseconds: computeMicroseconds * factor, memoryMicroseconds: memoryMicroseconds * factor,
            deadlineMicroseconds: deadlineMicroseconds.map { $0 * factor })
    }
}

/// A test's program: the jobs of every vCPU, generated from a seed, so that
/// every configuration of a round runs exactly the same thing. Pure.
public struct TestProgram: Sendable, Equatable {
    public var test: WorkloadTest
    public var seed: UInt64
    /// `vcpus[v]`: vCPU v's jobs, in order.
    public var vcpus: [[JobSpec]]

    public init(test: WorkloadTest, seed: UInt64, vcpus: [[JobSpec]]) {
        self.test = test
        self.seed = seed
        self.vcpus = vcpus
    }

    public var jobCount: Int { vcpus.reduce(0) { $0 + $1.count } }
    public var workMicroseconds: Double { vcpus.joined().reduce(0) { $0 + $1.workMicroseconds } }

    /// How long the program runs with no contention and no overhead: every
    /// job at its release, as fast as calibrated (the longest vCPU), µs.
    public var nominalMicroseconds: Double {
        vcpus.map { jobs in
            var clock = 0.0
            for job in jobs {
                let release = job.absoluteRelease ? job.releaseMicroseconds : clock + job.releaseMicroseconds
                clock = max(clock, release) + job.workMicroseconds
            }
            return clock
        }.max() ?? 0
    }

    /// The program of `test` for `vcpuCount` vCPUs, about `seconds` long
    /// per vCPU, from `seed` (bench/workload.md has the same definitions);
    /// with `timeScale` below 1 every time of every job shrinks by it, so a
    /// quick run's longest jobs (a photo filter, 15-45 ms) take a fraction of
    /// that (structure, not numbers to quote).
    public static func generate(
        test: WorkloadTest, vcpuCount: Int, seconds: Double, seed: UInt64, timeScale: Double = 1
    ) -> TestProgram {
        let program = unscaled(test: test, vcpuCount: vcpuCount, seconds: seconds, seed: seed)
        guard timeScale != 1 else { return program }
        return TestProgram(test: test, seed: seed, vcpus: program.vcpus.map { $0.map { $0.scaled(by: timeScale) } })
    }

    static func unscaled(test: WorkloadTest, vcpuCount: Int, seconds: Double, seed: UInt64) -> TestProgram {
        let length = max(seconds, 0.001) * 1e6
        let vcpus = (0..<max(vcpuCount, 1)).map { vcpu -> [JobSpec] in
            var random = SplitMix64(seed: SplitMix64.derive(seed, UInt64(vcpu)))
            switch test {
            case .webBrowsing: return webBrowsing(length: length, random: &random)
            case .writing: return writing(length: length, random: &random)
            case .photoEditing:
                // The same filters on every vCPU (one picture, split across
                // threads): one stream for the sizes, a little jitter each.
                var shared = SplitMix64(seed: SplitMix64.derive(seed, 0xF17E))
                return photoEditing(length: length, sizes: &shared, jitter: &random)
            case .videoEditing: return videoEditing(length: length, random: &random)
            case .dataManipulation: return dataManipulation(length: length, random: &random)
            }
        }
        return TestProgram(test: test, seed: seed, vcpus: vcpus)
    }

    // MARK: The five patterns (all times µs)

    /// Interactions of 6-18 frames on the 60 Hz clock, each frame 0.5-2 ms
    /// of compute and 0.1-0.4 ms of memory work (about 8 % of a CPU while
    /// it scrolls), due one frame after its release; 40-160 ms of reading
    /// between interactions.
    static func webBrowsing(length: Double, random: inout SplitMix64) -> [JobSpec] {
        let period = WorkloadTest.webFramePeriod
        var jobs: [JobSpec] = []
        var clock = random.uniform(0, 30_000)
        while clock < length {
            // The last interaction ends with the program (a short program has a short one).
            let frames = min(random.integer(6, 18), max(2, Int((length - clock) / period)))
            for frame in 0..<frames {
                jobs.append(JobSpec(
                    interactive: true, absoluteRelease: true, releaseMicroseconds: clock + Double(frame) * period,
                    computeMicroseconds: random.uniform(500, 2_000), memoryMicroseconds: random.uniform(100, 400),
                    deadlineMicroseconds: period))
            }
            clock += Double(frames) * period + random.uniform(40_000, 160_000)
        }
        return jobs
    }

    /// Keystrokes 30-90 ms apart (after the previous one was handled), each
    /// 0.15-0.6 ms of compute, due within `keystrokeDeadline`; every 16th
    /// job an autosave (4-8 ms compute, 1-2 ms memory, no deadline, not
    /// latency-critical).
    static func writing(length: Double, random: inout SplitMix64) -> [JobSpec] {
        var jobs: [JobSpec] = []
        var clock = 0.0
        while clock < length {
            let think = random.uniform(30_000, 90_000)
            let job: JobSpec
            if jobs.count % 16 == 15 {
                job = JobSpec(
                    interactive: false, absoluteRelease: false, releaseMicroseconds: think,
                    computeMicroseconds: random.uniform(4_000, 8_000), memoryMicroseconds: random.uniform(1_000, 2_000))
            } else {
                job = JobSpec(
                    interactive: true, absoluteRelease: false, releaseMicroseconds: think,
                    computeMicroseconds: random.uniform(150, 600), deadlineMicroseconds: WorkloadTest.keystrokeDeadline)
            }
            jobs.append(job)
            clock += think + job.workMicroseconds
        }
        return jobs
    }

    /// Filters of 15-45 ms compute and 2-6 ms memory work on every vCPU
    /// (the same sizes on each, ±5 %), 40-120 ms of looking between them
    /// (after the filter is done). Not latency-critical, no deadline.
    static func photoEditing(length: Double, sizes: inout SplitMix64, jitter: inout SplitMix64) -> [JobSpec] {
        var jobs: [JobSpec] = []
        var clock = 0.0
        while clock < length {
            let think = sizes.uniform(40_000, 120_000)
            let compute = sizes.uniform(15_000, 45_000) * jitter.uniform(0.95, 1.05)
            let memory = sizes.uniform(2_000, 6_000) * jitter.uniform(0.95, 1.05)
            jobs.append(JobSpec(
                interactive: false, absoluteRelease: false, releaseMicroseconds: think, computeMicroseconds: compute,
                memoryMicroseconds: memory))
            clock += think + compute + memory
        }
        return jobs
    }

    /// Frames on the 30 fps clock from a random phase, each 1-2.5 ms of
    /// compute and 0.3-0.6 ms of memory work (about 7 % of a CPU), due one
    /// frame after release; latency-critical (playback).
    static func videoEditing(length: Double, random: inout SplitMix64) -> [JobSpec] {
        let period = WorkloadTest.videoFramePeriod
        var jobs: [JobSpec] = []
        var release = random.uniform(0, period)
        while release < length {
            jobs.append(JobSpec(
                interactive: true, absoluteRelease: true, releaseMicroseconds: release,
                computeMicroseconds: random.uniform(1_000, 2_500), memoryMicroseconds: random.uniform(300, 600),
                deadlineMicroseconds: period))
            release += period
        }
        return jobs
    }

    /// Jobs of 1-6 ms compute and 3-12 ms memory-bound work, 3-15 ms apart
    /// (after the previous one). Not latency-critical, no deadline.
    static func dataManipulation(length: Double, random: inout SplitMix64) -> [JobSpec] {
        var jobs: [JobSpec] = []
        var clock = 0.0
        while clock < length {
            let job = JobSpec(
                interactive: false, absoluteRelease: false, releaseMicroseconds: random.uniform(3_000, 15_000),
                computeMicroseconds: random.uniform(1_000, 6_000), memoryMicroseconds: random.uniform(3_000, 12_000))
            jobs.append(job)
            clock += job.releaseMicroseconds + job.workMicroseconds
        }
        return jobs
    }
}
