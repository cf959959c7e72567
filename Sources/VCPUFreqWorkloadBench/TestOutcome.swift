import VCPUFreqBenchSupport

/// When one job ran, µs from its vCPU's start of the test (the guest's
/// own time stamps, converted with the TSC calibration).
public struct JobTiming: Sendable, Equatable {
    /// When it was due.
    public var release: Double
    /// When the vCPU ran it (back from the idle before it, wake-up included).
    public var start: Double
    public var end: Double

    public init(release: Double, start: Double, end: Double) {
        self.release = release
        self.start = start
        self.end = end
    }

    public var response: Double { max(0, end - release) }
    public var startDelay: Double { max(0, start - release) }
}

/// What one run of one test gave: the raw figure its score comes from and
/// the numbers behind it. Pure: computed from the program and the timings.
public struct TestOutcome: Sendable, Equatable, Codable {
    public var jobs: Int
    /// Jobs with a deadline, and those that ended within it.
    public var deadlineJobs: Int
    public var metJobs: Int
    /// Σ nominal work of the program, µs.
    public var workMicroseconds: Double
    /// Σ (end − release) over every job, µs.
    public var responseMicroseconds: Double
    /// The longest vCPU's start → last end, µs.
    public var elapsedMicroseconds: Double
    /// Release → running, µs, over the interactive jobs (the wake-up a latency hint acts on).
    public var interactiveStartDelay: LatencySummary?
    /// Release → end, µs, over the jobs with a deadline.
    public var deadlineResponse: LatencySummary?
    /// The raw figure (`WorkloadTest.Scoring`): the score is 1000 × raw ÷ the baseline's mean raw.
    public var raw: Double

    public var metRate: Double? { deadlineJobs > 0 ? Double(metJobs) / Double(deadlineJobs) : nil }

    /// Scores `timings[v][j]` (job j of vCPU v) against `program`.
    /// Missing timings (fewer records than jobs) count as jobs not done.
    public static func score(program: TestProgram, timings: [[JobTiming]]) -> TestOutcome {
        var jobs = 0
        var deadlineJobs = 0
        var met = 0
        var work = 0.0
        var response = 0.0
        var elapsed = 0.0
        var delays: [Double] = []
        var responses: [Double] = []
        for (vcpu, specs) in program.vcpus.enumerated() {
            let timed = vcpu < timings.count ? timings[vcpu] : []
            for (index, spec) in specs.enumerated() {
                if spec.deadlineMicroseconds != nil { deadlineJobs += 1 }
                guard index < timed.count else { continue }
                let timing = timed[index]
                jobs += 1
                work += spec.workMicroseconds
                response += timing.response
                elapsed = max(elapsed, timing.end)
                if spec.interactive { delays.append(timing.startDelay) }
                if let deadline = spec.deadlineMicroseconds {
                    responses.append(timing.response)
                    if timing.response <= deadline { met += 1 }
                }
            }
        }
        let raw: Double
        switch program.test.scoring {
        case .throughput:
            raw = response > 0 ? work / response : 0
        case .deadline:
            let rate = deadlineJobs > 0 ? Double(met) / Double(deadlineJobs) : 0
            raw = elapsed > 0 ? rate * Double(jobs) / (elapsed / 1e6) : 0
        }
        return TestOutcome(
            jobs: jobs, deadlineJobs: deadlineJobs, metJobs: met, workMicroseconds: work,
            responseMicroseconds: response, elapsedMicroseconds: elapsed,
            interactiveStartDelay: LatencySummary(delays), deadlineResponse: LatencySummary(responses), raw: raw)
    }
}
