import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// A broken guest or script ends with a typed error, never a hang or a crash.
@Suite(requiresKVM) struct FailureTests {
    /// Non-canonical (#GP) and beyond the 1 GiB identity map (#PF): with no
    /// guest kernel to take the fault, the vCPU shuts down.
    @Test(arguments: [0x8000_0000_0000_0000 as UInt64, 0x8000_0000])
    func aGuestFaultEndsTheRunWithTheExitAndTheFaultingOp(address: UInt64) throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let vcpu = vm.vcpus[0]
        let started = ContinuousClock.now
        let error = #expect(throws: KVMError.self) {
            try vcpu.run(script: [.write32(upstreamRegister(.setPerf), value: 1), .read32(address), .spin(iterations: 1)])
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        guard case .unexpectedExit(let index, let reason, let rip, let opIndex, _) = error else {
            Issue.record("expected an unexpected exit, got \(String(describing: error))")
            return
        }
        #expect(index == 0)
        #expect(reason == .shutdown || reason == .internalError || reason == .exception)
        #expect(opIndex == 1)
        #expect((GuestLayout.codeAddress..<GuestLayout.codeAddress + UInt64(GuestLayout.codeCapacity)).contains(rip))
        #expect(error?.description.contains("rip 0x\(String(rip, radix: 16))") == true)
        #expect(vcpu.exitCounts[reason] == 1)
        // The vCPU is usable again.
        let next = try vcpu.run(script: [.write32(upstreamRegister(.setPerf), value: 2)])
        #expect(next.exits.mmioWrites == 1)
    }

    @Test func aGuestThatNeverFinishesIsStoppedByTheWatchdog() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let vcpu = vm.vcpus[0]
        let started = ContinuousClock.now
        let error = #expect(throws: KVMError.self) {
            try vcpu.run(
                script: [.spin(iterations: 10), .wait32(address: vm.layout.scratch.lowerBound, value: 1, maxSpins: .max)],
                timeout: .milliseconds(300))
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(300) && elapsed < .seconds(5))
        guard case .timedOut(let index, let timeout, let rip, let opIndex) = error else {
            Issue.record("expected a timeout, got \(String(describing: error))")
            return
        }
        #expect(index == 0 && timeout == .milliseconds(300) && opIndex == 1)
        #expect((GuestLayout.codeAddress..<GuestLayout.codeAddress + UInt64(GuestLayout.codeCapacity)).contains(rip))
        #expect(vcpu.exitCounts[.interrupted] >= 1)
        let next = try vcpu.run(script: [.spin(iterations: 10)])
        #expect(next.results == [GuestOpResult(value: 10, aux: 0)])
    }

    @Test func concurrentRunsShareOneTimeout() throws {
        let vm = try VirtualMachine(vcpuCount: 2)
        let never = vm.layout.scratch.lowerBound
        let results = vm.run(
            [[.wait32(address: never, value: 1, maxSpins: .max)], [.spin(iterations: 100)]],
            timeout: .milliseconds(200))
        guard case .failure(.timedOut(vcpu: 0, _, _, _)) = results[0] else {
            Issue.record("vCPU 0 should time out: \(results[0])")
            return
        }
        #expect(try results[1].get().results[0].count == 100)
    }

    @Test func moreScriptsThanVCPUsAreRefusedOneByOne() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let results = vm.run([[.spin(iterations: 5)], [.spin(iterations: 6)]])
        #expect(results.count == 2)
        #expect(try results[0].get().results == [GuestOpResult(value: 5, aux: 0)])
        #expect(throws: KVMError.self) { try results[1].get() }
    }

    @Test func scriptsTheInterpreterCannotHoldAreRefusedBeforeRunning() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let vcpu = vm.vcpus[0]
        let longest = GuestScript(Array(repeating: .spin(iterations: 1), count: GuestLayout.maximumScriptOps - 1))
        #expect(try vcpu.run(script: longest).results.count == GuestLayout.maximumScriptOps - 1)
        let tooLong = GuestScript(Array(repeating: .spin(iterations: 1), count: GuestLayout.maximumScriptOps))
        #expect(throws: KVMError.self) { try vcpu.start(script: tooLong) }
        #expect(throws: KVMError.self) {
            try vcpu.start(script: [.portWrite(port: 0x80, width: .word64, value: 0, count: 1)])
        }
        #expect(throws: KVMError.self) {
            try vcpu.start(script: [.publish(slot: 0, utilization: 0, performanceKHz: 0, flags: [], doorbell: 1 << 32, count: 1)])
        }
        // Nothing was started by the refused scripts.
        #expect(throws: KVMError.vcpuIdle(vcpu: 0)) { try vcpu.wait() }
    }

    @Test func opsAfterAnEndNeverRun() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let run = try vm.vcpus[0].run(script: [.spin(iterations: 3), .end, .write32(upstreamRegister(.setPerf), value: 1)])
        #expect(run.results == [GuestOpResult(value: 3, aux: 0)])
        #expect(handler.accesses.isEmpty)
    }

    @Test func badVMShapesAreRefused() throws {
        let system = try KVMSystem()
        #expect(throws: KVMError.self) { try VirtualMachine(system: system, vcpuCount: 0) }
        #expect(throws: KVMError.self) { try VirtualMachine(system: system, vcpuCount: 1, ramSize: 0x2_0000) }
        #expect(throws: KVMError.self) {
            try VirtualMachine(system: system, vcpuCount: system.capabilities.maximumVCPUs + 1)
        }
    }
}
