import Testing
@testable import VCPUFreqWorkloadBench

/// The raw figures, worked by hand.
@Suite struct OutcomeTests {
    static func job(_ release: Double, work: Double, deadline: Double? = nil, interactive: Bool = false) -> JobSpec {
        JobSpec(interactive: interactive, absoluteRelease: true, releaseMicroseconds: release, computeMicroseconds: work,
                deadlineMicroseconds: deadline)
    }

    @Test func throughputIsWorkOverResponseTime() {
        let program = TestProgram(test: .photoEditing, seed: 0, vcpus: [[Self.job(0, work: 100), Self.job(1000, work: 300)]])
        // Released 0 and 1000; the first ran 0→200 (2× slower), the second 1100→1400 (100 late).
        let outcome = TestOutcome.score(program: program, timings: [[
            JobTiming(release: 0, start: 0, end: 200), JobTiming(release: 1000, start: 1100, end: 1400),
        ]])
        #expect(outcome.jobs == 2 && outcome.deadlineJobs == 0 && outcome.metRate == nil)
        #expect(outcome.workMicroseconds == 400 && outcome.responseMicroseconds == 600 && outcome.elapsedMicroseconds == 1400)
        #expect(abs(outcome.raw - 400.0 / 600.0) < 1e-12)
        #expect(outcome.interactiveStartDelay == nil)
    }

    @Test func deadlineIsMetRateTimesJobsPerSecond() {
        let program = TestProgram(test: .videoEditing, seed: 0, vcpus: [
            [Self.job(0, work: 10, deadline: 100, interactive: true), Self.job(100, work: 10, deadline: 100, interactive: true)],
            [Self.job(50, work: 10, deadline: 100, interactive: true), Self.job(150, work: 10, deadline: 100, interactive: true)],
        ])
        // vCPU 0 meets both; vCPU 1 misses its second (release 150, end 260: 110 > 100).
        let outcome = TestOutcome.score(program: program, timings: [
            [JobTiming(release: 0, start: 5, end: 20), JobTiming(release: 100, start: 100, end: 200)],
            [JobTiming(release: 50, start: 60, end: 80), JobTiming(release: 150, start: 240, end: 260)],
        ])
        #expect(outcome.deadlineJobs == 4 && outcome.metJobs == 3 && outcome.metRate == 0.75)
        #expect(outcome.elapsedMicroseconds == 260)
        #expect(abs(outcome.raw - 0.75 * 4 / 260e-6) < 1e-6)
        #expect(outcome.interactiveStartDelay?.count == 4 && outcome.interactiveStartDelay?.max == 90)
        #expect(outcome.deadlineResponse?.max == 110)
    }

    /// A guest that stopped early: the jobs without records are not done, and their deadlines count as missed.
    @Test func missingRecordsAreJobsNotDone() {
        let program = TestProgram(test: .writing, seed: 0, vcpus: [[Self.job(0, work: 10, deadline: 50), Self.job(100, work: 10, deadline: 50)]])
        let outcome = TestOutcome.score(program: program, timings: [[JobTiming(release: 0, start: 0, end: 10)]])
        #expect(outcome.jobs == 1 && outcome.deadlineJobs == 2 && outcome.metJobs == 1)
        let none = TestOutcome.score(program: program, timings: [])
        #expect(none.jobs == 0 && none.raw == 0)
    }
}
