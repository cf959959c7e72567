import Glibc
import Synchronization
import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// The WORKLOAD op (what `bench workload` runs in its guests) and the idle
/// page, on real KVM: the guest's records against a replay of its own time
/// stamps through `GuestUtilization`, its requests against what the handler
/// or the slot saw, and the idle store against the vCPU thread's CPU time.
@Suite(requiresKVM) struct WorkloadOpTests {
    /// One calibration for the suite (~0.5 s): TSC ticks per µs and spin iterations per ns.
    static let calibration: (tsc: TSCCalibration, spin: SpinCalibration)? = {
        guard let vm = try? VirtualMachine(vcpuCount: 1), let spin = try? vm.vcpus[0].calibrateSpin(),
            let tsc = try? TSCCalibration.measure(on: vm.vcpus[0], spin: spin)
        else { return nil }
        return (tsc, spin)
    }()

    static let table: [UInt32] = [500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000]

    func parameters(_ kind: WorkloadParameters.Kind) throws -> (WorkloadParameters, SpinCalibration, TSCCalibration) {
        let (tsc, spin) = try #require(Self.calibration)
        let ticks = { (microseconds: Double) in UInt64(microseconds * tsc.ticksPerMicrosecond) }
        var block = WorkloadParameters(
            kind: kind, tickTicks: ticks(4_000), periodTicks: ticks(1_024), rateLimitTicks: ticks(1_000),
            ticksPerMicrosecond: tsc.ticksPerMicrosecond, idleMinimumTicks: ticks(50), tableKHz: Self.table)
        block.flags = (normal: SharedPageABI.GuestFlags.perfValid.rawValue,
                       interactive: SharedPageABI.GuestFlags([.perfValid, .latencySensitive]).rawValue)
        return (block, spin, tsc)
    }

    func job(_ spin: SpinCalibration, _ tsc: TSCCalibration, gapMs: Double, workMs: Double, interactive: Bool = false)
        -> WorkloadParameters.Job
    {
        WorkloadParameters.Job(
            interactive: interactive, releaseTicks: UInt64(gapMs * 1000 * tsc.ticksPerMicrosecond),
            computeIterations: spin.iterations(for: .microseconds(Int64(workMs * 1000))))
    }

    func run(_ block: WorkloadParameters, _ jobs: [WorkloadParameters.Job], on vm: VirtualMachine)
        throws -> (GuestRunResult, [WorkloadParameters.Record], WorkloadParameters.State)
    {
        let at = vm.layout.scratch.lowerBound
        try block.write(jobs: jobs, to: vm.ram, at: at)
        let result = try vm.vcpus[0].run(script: [.workload(parameters: at, count: UInt32(jobs.count))], timeout: .seconds(60))
        let records = WorkloadParameters.records(in: vm.ram, at: at, count: jobs.count)
        return (result, records, try #require(WorkloadParameters.state(in: vm.ram, at: at)))
    }

    // MARK: The idle page

    /// A store to the idle page sleeps the vCPU thread that long: no MMIO
    /// exit is counted or handed to the handler, the thread's CPU time stays
    /// far below the sleep, and the counters show the store and the time.
    @Test func anIdleStoreSleepsTheThreadWithoutAnMMIOExit() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let tid = Int32(vm.vcpus[0].threadID)
        let before = threadRunNanoseconds(tid)
        let started = ContinuousClock.now
        let result = try vm.vcpus[0].run(
            script: [.write(address: GuestLayout.idleAddress, width: .word64, value: 30_000_000, count: 2)])
        let elapsed = ContinuousClock.now - started
        let cpu = threadRunNanoseconds(tid) - before
        #expect(handler.accesses.isEmpty && result.exits.total == 0 && result.exits.mmioWrites == 0)
        #expect(result.exits.idle == 2)
        #expect(result.exits.idleNanoseconds >= 60_000_000 && elapsed >= .milliseconds(60))
        #expect(cpu < 20_000_000, "the thread slept: \(cpu) ns of CPU in 60 ms")
    }

    /// The watchdog ends a run that idles past its timeout (the sleep is cut
    /// short, not served in full), and a guest cannot ask for more than
    /// `maximumIdle` per store.
    @Test func theWatchdogCutsALongIdleShort() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let started = ContinuousClock.now
        #expect(throws: KVMError.self) {
            try vm.vcpus[0].run(
                script: [.write(address: GuestLayout.idleAddress, width: .word64, value: .max, count: 100)],
                timeout: .milliseconds(200))
        }
        #expect(ContinuousClock.now - started < GuestLayout.maximumIdle)
        let next = try vm.vcpus[0].run(script: [.spin(iterations: 10)])
        #expect(next.results == [GuestOpResult(value: 10, aux: 0)])
    }

    // MARK: Idle and the estimate

    /// A mostly idle program: every gap is an idle store and the vCPU thread
    /// sleeps through it (its CPU time is a fraction of the gaps); the
    /// records are in order; the estimate at each job's end is what the
    /// Swift model computes from the guest's own time stamps.
    @Test func idleGapsSleepTheThreadAndTheEstimateMatchesAReplay() throws {
        let (block, spin, tsc) = try parameters(.none)
        let vm = try VirtualMachine(vcpuCount: 1)
        let jobs = (0..<12).map { index in job(spin, tsc, gapMs: index % 3 == 0 ? 25 : 3, workMs: index % 2 == 0 ? 6 : 1) }
        let tid = Int32(vm.vcpus[0].threadID)
        let before = threadRunNanoseconds(tid)
        let (result, records, state) = try run(block, jobs, on: vm)
        let cpu = threadRunNanoseconds(tid) - before

        #expect(result.exits.total == 0, "nothing but idles: \(result.exits)")
        #expect(result.exits.idle >= UInt64(jobs.count), "one idle store per gap at least")
        #expect(state.idleStores == result.exits.idle)
        #expect(result.results.first?.value == 0, "no device, no request")
        #expect(state.requests == 0 && state.ticks > 0)
        let gaps = jobs.reduce(0.0) { $0 + Double($1.releaseTicks) } / tsc.ticksPerMicrosecond * 1000
        #expect(Double(result.exits.idleNanoseconds) >= 0.9 * gaps, "slept through the gaps")
        // Spinning through the gaps would cost work + gaps of CPU, sleeping costs
        // the work (42 ms, as calibrated) and little more: the bound is halfway.
        let work = jobs.reduce(0.0) { $0 + Double($1.computeIterations) * spin.nanosecondsPerIteration }
        #expect(Double(cpu) < work + 0.5 * gaps, "the thread slept: \(cpu) ns of CPU for \(work) ns of work and \(gaps) ns of gaps")
        #expect(records.count == jobs.count)
        for (index, record) in records.enumerated() {
            #expect(record.releaseTSC <= record.startTSC && record.startTSC < record.endTSC)
            if index > 0 {
                #expect(record.releaseTSC == records[index - 1].endTSC + jobs[index].releaseTicks, "released after the previous end")
            }
        }
        // The replay: idle from the previous job's end (the op's start for the
        // first) to this one's start, running from its start to its end.
        var model = GuestUtilization(
            periodTicks: block.periodTicks, decayFixed: block.decayFixed,
            start: records[0].releaseTSC - jobs[0].releaseTicks)
        for record in records {
            model.update(now: record.startTSC, running: false)
            model.update(now: record.endTSC, running: true)
            #expect(abs(Int(model.utilization) - Int(record.utilization)) <= 2, "guest \(record.utilization), model \(model.utilization)")
        }
        #expect(records.contains { $0.utilization > 20 }, "6 ms bursts raise the estimate")
    }

    /// Without the idle page the guest spins through its gaps: no idle exits.
    @Test func withoutAnIdlePageTheGuestSpins() throws {
        var (block, spin, tsc) = try parameters(.none)
        block.idleAddress = 0
        let vm = try VirtualMachine(vcpuCount: 1)
        let (result, records, state) = try run(block, [job(spin, tsc, gapMs: 5, workMs: 0.5), job(spin, tsc, gapMs: 5, workMs: 0.5)], on: vm)
        #expect(result.exits.idle == 0 && state.idleStores == 0 && result.exits.total == 0)
        #expect(records.count == 2 && records[1].startTSC >= records[1].releaseTSC)
    }

    // MARK: set_perf

    /// Long compute: the estimate climbs toward the invariance scale the
    /// handler's cur_perf gives, every tick reads cur_perf (an exit each),
    /// and the requests are set_perf stores of table entries, no more often
    /// than the rate limit.
    @Test(arguments: [3_000_000, 1_500_000] as [UInt32])
    func setPerfRequestsFollowTheEstimateScaledByCurPerf(curPerf: UInt32) throws {
        var (block, spin, tsc) = try parameters(.store)
        let handler = RecordingHandler { _, _ in UInt64(curPerf) }
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        block.target = upstreamRegister(.setPerf)
        block.currentPerformanceAddress = upstreamRegister(.curPerf)
        let jobs = [job(spin, tsc, gapMs: 0, workMs: 300), job(spin, tsc, gapMs: 200, workMs: 0.1)]
        let (result, records, state) = try run(block, jobs, on: vm)
        let writes = handler.accesses.filter { $0.isWrite }
        let reads = handler.accesses.filter { !$0.isWrite }
        #expect(writes.allSatisfy { $0.gpa == upstreamRegister(.setPerf) && $0.width == 4 })
        #expect(writes.allSatisfy { Self.table.contains(UInt32($0.value)) }, "\(writes.map(\.value))")
        #expect(UInt64(writes.count) == state.requests && result.results.first?.value == state.requests)
        #expect(UInt64(reads.count) == state.ticks && state.lastCurrentPerformanceKHz == UInt64(curPerf))
        #expect(result.exits.mmioWrites == state.requests && result.exits.mmioReads == state.ticks)
        // Consecutive requests differ (schedutil sends changes only).
        #expect(zip(writes, writes.dropFirst()).allSatisfy { $0.value != $1.value })
        // 300 ms of work: the estimate nears the scale (1024 or 512); 1.25 × it is the top or near it.
        let scale = Double(curPerf) / 3_000_000 * 1024
        #expect(Double(records[0].utilization) > 0.9 * scale && Double(records[0].utilization) <= scale + 1)
        let elapsed = Double(records[1].endTSC - records[0].releaseTSC)
        #expect(Double(state.requests) <= elapsed / Double(block.rateLimitTicks) + 1)
        let expected = GuestUtilization.performance(fixed: UInt64(records[0].utilization) << 16, tableKHz: Self.table)
        #expect(writes.map(\.value).contains(UInt64(expected)), "the level of the climbed estimate was asked")
        // After 200 ms idle the estimate has decayed: the last request is a low
        // level. 200 ms is ~6 PELT halvings (1024 -> ~17); a job's release counts
        // from the previous release, so a first job that overruns its 300 ms
        // shortens the idle gap: the bound (< 32, five halvings) holds for any
        // gap over ~165 ms. It was < 20, which a 10 ms overrun broke.
        #expect(records[1].utilization < 32 && state.lastPerformanceKHz <= 1_000_000, "\(records[1].utilization)")
    }

    // MARK: The shared page

    /// A one-vCPU VM and a zeroed slot in RAM at the end of its scratch area (address, RAM offset).
    func vmWithSlot() throws -> (VirtualMachine, UInt64, Int) {
        let vm = try VirtualMachine(vcpuCount: 1)
        let slot = vm.layout.scratch.upperBound - 0x1000
        let slotOffset = try #require(vm.ram.offset(of: slot))
        for word in 0..<16 { vm.ram.store32(0, at: slotOffset + 4 * word) }
        return (vm, slot, slotOffset)
    }

    /// Publishes in a RAM slot: the slot shows the last level and the
    /// running job's flags, the sequence is even; kicks only when the host
    /// flags ask; a change of the job's flags is published at once.
    @Test(arguments: [true, false])
    func publishesCarryTheLatencyFlagAndKickOnlyWhenAsked(kick: Bool) throws {
        var (block, spin, tsc) = try parameters(.publish)
        let (vm, slot, slotOffset) = try vmWithSlot()
        vm.ram.store32(kick ? SharedPageABI.HostSlotFlags.kick.rawValue : 0, at: slotOffset + SharedPageABI.Slot.hostFlags)
        let doorbell = try EventFD()
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(0), length: 4, eventfd: doorbell.fileDescriptor)
        block.target = slot
        block.doorbell = doorbellAddress(0)
        let jobs = [
            job(spin, tsc, gapMs: 0, workMs: 30, interactive: false), job(spin, tsc, gapMs: 2, workMs: 30, interactive: true),
        ]
        let (result, records, state) = try run(block, jobs, on: vm)
        #expect(result.exits.total == 0)
        #expect(state.requests >= 2, "the first job and the flag change")
        #expect(state.kicks == (kick ? state.requests : 0) && result.results.first?.aux == state.kicks)
        #expect((try? doorbell.read()) == (kick ? state.kicks : nil) || !kick)
        let sequence = vm.ram.load32(at: slotOffset + SharedPageABI.Slot.sequence)
        #expect(sequence % 2 == 0 && UInt64(sequence) == 2 * state.requests)
        #expect(vm.ram.load32(at: slotOffset + SharedPageABI.Slot.flags) == block.flags.interactive)
        #expect(UInt64(vm.ram.load32(at: slotOffset + SharedPageABI.Slot.performanceKHz)) == state.lastPerformanceKHz)
        #expect(records.count == 2)
    }

    /// PUBLISH_UTIL (the BPF-map page's driver): the estimate itself in the
    /// slot's utilization field with the slot flags, at every update (more
    /// publishes than a rate-limited PUBLISH of levels would make), the
    /// perf field untouched, no kick without the host's kick bit.
    @Test func utilizationPublishesCarryTheEstimateAtEveryUpdate() throws {
        var (block, spin, tsc) = try parameters(.publishUtilization)
        let (vm, slot, slotOffset) = try vmWithSlot()
        block.target = slot
        block.doorbell = doorbellAddress(0)
        let valid = SharedPageABI.GuestFlags.utilValid.rawValue
        block.flags = (valid, valid | SharedPageABI.GuestFlags.latencySensitive.rawValue)
        let jobs = [
            job(spin, tsc, gapMs: 0, workMs: 30, interactive: false), job(spin, tsc, gapMs: 2, workMs: 30, interactive: true),
        ]
        let (result, records, state) = try run(block, jobs, on: vm)
        #expect(result.exits.total == 0 && state.kicks == 0)
        // Every tick and every enqueue/dequeue publishes: at least one per tick.
        #expect(state.requests >= state.ticks && state.ticks > 0, "\(state.requests) publishes, \(state.ticks) ticks")
        let sequence = vm.ram.load32(at: slotOffset + SharedPageABI.Slot.sequence)
        #expect(sequence % 2 == 0 && UInt64(sequence) == 2 * state.requests)
        #expect(vm.ram.load32(at: slotOffset + SharedPageABI.Slot.flags) == block.flags.interactive)
        #expect(vm.ram.load32(at: slotOffset + SharedPageABI.Slot.performanceKHz) == 0, "no perf field")
        let published = vm.ram.load32(at: slotOffset + SharedPageABI.Slot.utilization)
        #expect(published > 0 && published <= 1024)
        // The last publish was at the last tick, at most 4 ms (4 PELT periods, at most 1024 × (1 − y⁴) ≈ 85) before the end.
        #expect(abs(Double(published) - state.utilization) <= 90, "\(published) published, \(state.utilization) at the end")
        #expect(records.count == 2)
    }

    // MARK: The block

    @Test func badBlocksAreRefused() throws {
        let (good, _, _) = try parameters(.none)
        let vm = try VirtualMachine(vcpuCount: 1)
        let at = vm.layout.scratch.lowerBound
        let jobs = [WorkloadParameters.Job(releaseTicks: 0, computeIterations: 1)]
        #expect(throws: KVMError.self) { try good.write(jobs: jobs, to: vm.ram, at: at + 8) }
        #expect(throws: KVMError.self) { try good.write(jobs: jobs, to: vm.ram, at: UInt64(vm.ram.size) - 64) }
        for table in [[], [2, 1], [0, 1], Array(1...17)] as [[UInt32]] {
            var bad = good
            bad.tableKHz = table
            #expect(throws: KVMError.self) { try bad.write(jobs: jobs, to: vm.ram, at: at) }
        }
        var noPeriod = good
        noPeriod.periodTicks = 0
        #expect(throws: KVMError.self) { try noPeriod.write(jobs: jobs, to: vm.ram, at: at) }
        let memory = [WorkloadParameters.Job(releaseTicks: 0, computeIterations: 0, memoryIterations: 10)]
        var noBuffer = good
        noBuffer.bufferSize = 100
        #expect(throws: KVMError.self) { try noBuffer.write(jobs: memory, to: vm.ram, at: at) }
        try good.write(jobs: jobs, to: vm.ram, at: at)
    }

    /// Memory work touches the buffer: every touched line grew by one per
    /// touch, so the buffer's sum is the iteration count.
    @Test func memoryWorkIsReadModifyWritesOfTheBuffer() throws {
        var (block, _, _) = try parameters(.none)
        let vm = try VirtualMachine(vcpuCount: 1, ramSize: 16 << 20)
        let at = vm.layout.scratch.lowerBound
        block.buffer = 8 << 20
        block.bufferSize = 4 << 20
        let offset = try #require(vm.ram.offset(of: block.buffer))
        for word in stride(from: 0, to: Int(block.bufferSize), by: 8) { vm.ram.store64(0, at: offset + word) }
        let jobs = [WorkloadParameters.Job(releaseTicks: 0, computeIterations: 0, memoryIterations: 100_000)]
        try block.write(jobs: jobs, to: vm.ram, at: at)
        _ = try vm.vcpus[0].run(script: [.workload(parameters: at, count: 1)], timeout: .seconds(60))
        var sum: UInt64 = 0
        for word in stride(from: 0, to: Int(block.bufferSize), by: 8) { sum &+= vm.ram.load64(at: offset + word) }
        #expect(sum == 100_000)
    }

    func threadRunNanoseconds(_ tid: Int32) -> UInt64 {
        let text = readText("/proc/self/task/\(tid)/schedstat") ?? ""
        return UInt64(text.split(separator: " ").first ?? "") ?? 0
    }
}

/// The model alone, against hand-worked values.
@Suite struct GuestUtilizationTests {
    @Test func aFullyRunningPeriodMovesTheEstimateByOneMinusY() {
        var model = GuestUtilization(periodTicks: 1000, decayFixed: 64132, start: 0)
        model.update(now: 1000, running: true)
        // (0 × y + 1024·2^16 × (65536 − 64132)) >> 16 = 1024 × 1404 = 1437696 → util 21.9…
        #expect(model.fixed == 1024 * 1404)
        #expect(model.utilization == 21)
        model.update(now: 2000, running: false)
        #expect(model.fixed == (1024 * 1404 * 64132) >> 16)
    }

    @Test func halfAPeriodRunningAtHalfSpeedIsAQuarter() {
        var model = GuestUtilization(periodTicks: 1000, decayFixed: 0, start: 0)
        model.scale = 512
        model.update(now: 500, running: true)
        #expect(model.fixed == 0, "the period is still open")
        model.update(now: 1000, running: false)
        #expect(model.utilization == 256)
    }

    @Test func thirtyTwoIdlePeriodsHalveIt() {
        var model = GuestUtilization(periodTicks: 10, decayFixed: 64132, start: 0, utilization: 1000)
        model.update(now: 320, running: false)
        #expect(abs(Int(model.utilization) - 500) <= 2)
        model.update(now: 320 + 10 * 2000, running: false)
        #expect(model.utilization == 0, "decayed away (at most 1024 periods are counted)")
    }

    @Test(arguments: [
        (0, 500_000), (100, 500_000), (400, 1_500_000), (800, 3_000_000), (1024, 3_000_000), (600, 2_500_000),
    ] as [(UInt64, UInt32)])
    func schedutilPicksTheLowestLevelAboveOneAndAQuarterTimesTheEstimate(util: UInt64, kHz: UInt32) {
        let table: [UInt32] = [500_000, 1_000_000, 1_500_000, 2_000_000, 2_500_000, 3_000_000]
        // 400 → 1.25 × 400 / 1024 × 3 GHz = 1.465 GHz → 1.5 GHz; 600 → 2.197 GHz → 2.5 GHz.
        #expect(GuestUtilization.performance(fixed: util << 16, tableKHz: table) == kHz)
    }
}
