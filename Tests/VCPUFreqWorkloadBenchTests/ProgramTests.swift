import Testing
@testable import VCPUFreqWorkloadBench

/// The five tests' programs: seeded (the same seed, the same program; a
/// round's seed is every configuration's), shaped as bench/workload.md says.
@Suite struct ProgramTests {
    @Test(arguments: WorkloadTest.allCases)
    func theSameSeedGivesTheSameProgramAndAnotherSeedAnother(test: WorkloadTest) {
        let a = TestProgram.generate(test: test, vcpuCount: 2, seconds: 1, seed: 42)
        let b = TestProgram.generate(test: test, vcpuCount: 2, seconds: 1, seed: 42)
        let c = TestProgram.generate(test: test, vcpuCount: 2, seconds: 1, seed: 43)
        #expect(a == b)
        #expect(a.vcpus != c.vcpus)
        #expect(a.vcpus.count == 2 && a.vcpus.allSatisfy { !$0.isEmpty })
        if test != .photoEditing { #expect(a.vcpus[0] != a.vcpus[1], "each vCPU has its own stream") }
    }

    @Test func roundsGetTheirOwnProgramsAndEveryConfigurationOfARoundTheSame() {
        let settings = WorkloadSettings.full
        #expect(settings.programs(round: 0, vcpuCount: 2) == settings.programs(round: 0, vcpuCount: 2))
        #expect(settings.programs(round: 0, vcpuCount: 2) != settings.programs(round: 1, vcpuCount: 2))
        #expect(settings.programs(round: 3, vcpuCount: 2).map(\.test) == WorkloadTest.allCases)
    }

    /// About as long as asked, and within what a vCPU's block holds (250 jobs per nominal second).
    /// A time scale shrinks every time of every job and changes nothing else (quick mode's 0.25).
    @Test(arguments: WorkloadTest.allCases)
    func aTimeScaleShrinksEveryTimeOfTheSameJobs(test: WorkloadTest) {
        let full = TestProgram.generate(test: test, vcpuCount: 2, seconds: 0.5, seed: 11)
        let quarter = TestProgram.generate(test: test, vcpuCount: 2, seconds: 0.5, seed: 11, timeScale: 0.25)
        #expect(quarter.jobCount == full.jobCount && quarter.test == test)
        for (a, b) in zip(full.vcpus.joined(), quarter.vcpus.joined()) {
            #expect(a.interactive == b.interactive && a.absoluteRelease == b.absoluteRelease)
            #expect(abs(b.releaseMicroseconds - a.releaseMicroseconds / 4) < 1e-9)
            #expect(abs(b.workMicroseconds - a.workMicroseconds / 4) < 1e-9)
            #expect(b.deadlineMicroseconds.map { $0 * 4 } == a.deadlineMicroseconds)
        }
        #expect(abs(quarter.nominalMicroseconds - full.nominalMicroseconds / 4) < 1e-6)
    }

    @Test(arguments: WorkloadTest.allCases, [0.05, 0.5, 2.0])
    func programsLastAboutTheirLengthAndFitTheirBlock(test: WorkloadTest, seconds: Double) {
        for seed in 0..<20 as Range<UInt64> {
            let program = TestProgram.generate(test: test, vcpuCount: 2, seconds: seconds, seed: seed)
            let nominal = program.nominalMicroseconds / 1e6
            #expect(nominal >= max(seconds - 0.2, 0.01) && nominal <= seconds + 0.35, "\(test) \(seed): \(nominal) s")
            for jobs in program.vcpus { #expect(jobs.count <= Int(seconds * 250) + 64) }
            #expect(program.vcpus.joined().allSatisfy { $0.workMicroseconds > 0 && $0.releaseMicroseconds >= 0 })
        }
    }

    @Test func webBrowsingIsFramesOnASixtyHertzClockDueOneFrameLater() {
        let program = TestProgram.generate(test: .webBrowsing, vcpuCount: 1, seconds: 2, seed: 7)
        let jobs = program.vcpus[0]
        #expect(jobs.allSatisfy { $0.interactive && $0.absoluteRelease && $0.deadlineMicroseconds == WorkloadTest.webFramePeriod })
        #expect(jobs.allSatisfy { (600...2_400).contains($0.workMicroseconds) })
        // Within an interaction frames are one period apart; between interactions the gap is longer.
        let gaps = zip(jobs, jobs.dropFirst()).map { $1.releaseMicroseconds - $0.releaseMicroseconds }
        #expect(gaps.allSatisfy { abs($0 - WorkloadTest.webFramePeriod) < 0.01 || $0 >= WorkloadTest.webFramePeriod + 40_000 })
        #expect(gaps.contains { $0 > 40_000 }, "several interactions in 2 s")
    }

    @Test func writingIsKeystrokesWithADeadlineAndAnAutosaveEverySixteenth() {
        let jobs = TestProgram.generate(test: .writing, vcpuCount: 1, seconds: 2, seed: 1).vcpus[0]
        #expect(jobs.count >= 20)
        for (index, job) in jobs.enumerated() {
            #expect(!job.absoluteRelease && (30_000..<90_000).contains(job.releaseMicroseconds))
            if index % 16 == 15 {
                #expect(!job.interactive && job.deadlineMicroseconds == nil && job.workMicroseconds >= 5_000)
            } else {
                #expect(job.interactive && job.deadlineMicroseconds == WorkloadTest.keystrokeDeadline)
                #expect((150..<600).contains(job.computeMicroseconds) && job.memoryMicroseconds == 0)
            }
        }
    }

    @Test func photoEditingPutsTheSameFilterOnEveryVCPU() {
        let program = TestProgram.generate(test: .photoEditing, vcpuCount: 3, seconds: 2, seed: 5)
        #expect(Set(program.vcpus.map(\.count)).count == 1)
        for index in program.vcpus[0].indices {
            let jobs = program.vcpus.map { $0[index] }
            #expect(jobs.allSatisfy { !$0.interactive && $0.deadlineMicroseconds == nil })
            #expect(Set(jobs.map(\.releaseMicroseconds)).count == 1, "the same think time")
            let works = jobs.map(\.computeMicroseconds)
            #expect(works.max()! / works.min()! <= 1.05 / 0.95 + 1e-9)
        }
    }

    @Test func videoEditingIsFramesEveryThirtiethOfASecond() {
        let jobs = TestProgram.generate(test: .videoEditing, vcpuCount: 1, seconds: 1, seed: 3).vcpus[0]
        #expect(jobs.count == 30 || jobs.count == 31)
        #expect(jobs.allSatisfy { $0.interactive && $0.absoluteRelease && $0.deadlineMicroseconds == WorkloadTest.videoFramePeriod })
        #expect(zip(jobs, jobs.dropFirst()).allSatisfy { abs($1.releaseMicroseconds - $0.releaseMicroseconds - WorkloadTest.videoFramePeriod) < 0.01 })
    }

    @Test func dataManipulationIsMostlyMemoryBound() {
        let jobs = TestProgram.generate(test: .dataManipulation, vcpuCount: 1, seconds: 2, seed: 9).vcpus[0]
        #expect(jobs.allSatisfy { !$0.interactive && $0.deadlineMicroseconds == nil && $0.memoryMicroseconds >= 3_000 })
        let memory = jobs.reduce(0) { $0 + $1.memoryMicroseconds }
        let compute = jobs.reduce(0) { $0 + $1.computeMicroseconds }
        #expect(memory > compute)
    }

    @Test func scoringKindsAndNames() {
        #expect(WorkloadTest.allCases.map(\.name) == ["Web Browsing", "Writing", "Photo Editing", "Video Editing", "Data Manipulation"])
        #expect(WorkloadTest.allCases.filter { $0.scoring == .throughput } == [.photoEditing, .dataManipulation])
    }

    @Test func splitMixIsTheReferenceSequence() {
        // SplitMix64 from seed 0: the published first outputs.
        var random = SplitMix64(seed: 0)
        #expect(random.next() == 0xE220_A839_7B1D_CDAF)
        #expect(random.next() == 0x6E78_9E6A_A1B9_65F4)
        var bounded = SplitMix64(seed: 1)
        for _ in 0..<1000 {
            let value = bounded.uniform(3, 5)
            #expect(value >= 3 && value < 5)
            #expect((6...18).contains(bounded.integer(6, 18)))
        }
    }
}
