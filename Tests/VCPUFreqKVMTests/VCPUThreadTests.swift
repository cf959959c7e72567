import Glibc
import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// Per-vCPU host threads: known TIDs before any guest code, concurrent runs,
/// live exit counters.
@Suite(requiresKVM) struct VCPUThreadTests {
    @Test func eachVCPUHasItsOwnNamedThreadInThisProcessBeforeAnyRun() throws {
        let vm = try VirtualMachine(vcpuCount: 2)
        let tids = vm.vcpus.map(\.threadID)
        #expect(Set(tids).count == 2)
        #expect(!tids.contains(currentTID()))
        for (index, tid) in tids.enumerated() {
            #expect(tid > 0)
            #expect(fileExists("/proc/self/task/\(tid)"))
            #expect(readText("/proc/self/task/\(tid)/comm") == "vcpu \(index)\n")
            #expect(vm.vcpus[index].exitCounts.total == 0)
        }
    }

    @Test func twoVCPUsRunDifferentScriptsAtTheSameTime() throws {
        let handler = RecordingHandler { _, gpa in gpa }
        let vm = try VirtualMachine(vcpuCount: 2, handler: handler)
        let flag = vm.layout.scratch.lowerBound
        let register0 = upstreamRegister(.setPerf, vcpu: 0)
        let register1 = upstreamRegister(.setPerf, vcpu: 1)
        // vCPU 0 cannot finish unless vCPU 1 runs while it waits.
        let results = vm.run([
            [
                .wait32(address: flag, value: 1, maxSpins: 1 << 40),
                .write32(register0, value: 0xA0, count: 3),
            ],
            [
                .write32(register1, value: 0xB1, count: 5),
                .write32(flag, value: 1),
                .read32(upstreamRegister(.curPerf, vcpu: 1), count: 2),
            ],
        ])
        let run0 = try results[0].get()
        let run1 = try results[1].get()
        #expect(run0.vcpu == 0 && run1.vcpu == 1)
        #expect(run0.results[0].timedOut == false)
        #expect(run0.exits.mmioWrites == 3 && run0.exits.mmioReads == 0)
        #expect(run1.exits.mmioWrites == 5 && run1.exits.mmioReads == 2)
        #expect(run1.results[2].lastValue == upstreamRegister(.curPerf, vcpu: 1))
        let accesses = handler.accesses
        #expect(accesses.filter { $0.vcpu == 0 } == Array(repeating: Access(vcpu: 0, gpa: register0, width: 4, value: 0xA0, isWrite: true), count: 3))
        #expect(accesses.filter { $0.vcpu == 1 && $0.isWrite } == Array(repeating: Access(vcpu: 1, gpa: register1, width: 4, value: 0xB1, isWrite: true), count: 5))
    }

    @Test func exitCountersAreReadableWhileTheGuestRuns() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let gate = vm.layout.scratch.lowerBound
        let vcpu = vm.vcpus[0]
        try vcpu.start(script: [
            .write32(upstreamRegister(.setPerf), value: 1, count: 25),
            .wait32(address: gate, value: 1, maxSpins: 1 << 40),
        ])
        // The guest now spins in wait32 until the gate opens: its counters must already show the writes.
        let deadline = ContinuousClock.now + .seconds(10)
        while vcpu.exitCounts.mmioWrites < 25, ContinuousClock.now < deadline { sched_yield() }
        #expect(vcpu.exitCounts.mmioWrites == 25)
        vm.ram.store32(1, at: Int(gate))
        let run = try vcpu.wait()
        #expect(run.exits.mmioWrites == 25)
        #expect(run.results[1].timedOut == false)
        #expect(vcpu.exitCounts.mmioWrites == 25)
    }

    @Test func wait32GivesUpAfterItsLimitAndSaysSo() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let word = vm.layout.scratch.lowerBound
        vm.ram.store32(5, at: Int(word))
        let run = try vm.vcpus[0].run(script: [
            .wait32(address: word, value: 6, maxSpins: 1000),
            .wait32(address: word, value: 5, maxSpins: 1000),
        ])
        #expect(run.results[0] == GuestOpResult(value: 1000, aux: 1))
        #expect(run.results[1] == GuestOpResult(value: 0, aux: 0))
    }

    @Test func aVCPUCanBeGivenOneScriptAtATime() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let vcpu = vm.vcpus[0]
        #expect(throws: KVMError.vcpuIdle(vcpu: 0)) { try vcpu.wait() }
        let gate = vm.layout.scratch.lowerBound
        try vcpu.start(script: [.wait32(address: gate, value: 1, maxSpins: 1 << 40)])
        #expect(throws: KVMError.vcpuBusy(vcpu: 0)) { try vcpu.start(script: [.spin(iterations: 1)]) }
        vm.ram.store32(1, at: Int(gate))
        _ = try vcpu.wait()
        _ = try vcpu.run(script: [.spin(iterations: 1)])
    }

    @Test func spinCalibrationIsPositiveAndScales() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let calibration = try vm.vcpus[0].calibrateSpin(iterations: 20_000_000)
        #expect(calibration.nanosecondsPerIteration > 0)
        #expect(calibration.nanosecondsPerIteration < 100)
        let oneMillisecond = calibration.iterations(for: .milliseconds(1))
        let estimate = Double(oneMillisecond) * calibration.nanosecondsPerIteration
        #expect(abs(estimate - 1_000_000) < 1_000)
        let twoMilliseconds = calibration.iterations(for: .milliseconds(2))
        #expect(twoMilliseconds >= 2 * oneMillisecond && twoMilliseconds <= 2 * oneMillisecond + 1)
        #expect(SpinCalibration(nanosecondsPerIteration: 0).iterations(for: .seconds(1)) == 0)
    }
}
