import Testing
import VCPUFreqCore
@testable import VCPUFreqVMM

/// The VMM side's pure parts: no KVM, no daemon.
@Suite struct VMMUnitTests {
    /// Guest-physical addresses of the device space, written out from the
    /// table in docs/abi.md (base 0x1040000).
    @Test func deviceAddressesFollowTheABIMap() {
        let a = DeviceAddresses(base: 0x104_0000, vcpuCount: 4)
        #expect(a.upstream(.curPerf, vcpu: 0) == 0x104_0000)
        #expect(a.upstream(.perftblSel, vcpu: 3) == 0x104_300C)
        #expect(a.utilHint(.utilHint, vcpu: 1) == 0x144_1000)
        #expect(a.utilHint(.appliedUtil, vcpu: 2) == 0x144_201C)
        #expect(a.sharedPage == 0x184_0000)
        #expect(a.slot(vcpu: 0) == 0x184_0040)
        #expect(a.slot(vcpu: 3) == 0x184_0100)
        #expect(a.slotField(SharedPageABI.Slot.acknowledgedSequence, vcpu: 1) == 0x184_00B0)
        #expect(a.doorbell(vcpu: 0) == 0x18C_0000)
        #expect(a.doorbell(vcpu: 3) == 0x18C_000C)
        #expect(a.span == 0x104_0000..<0x18C_1000)
    }

    /// The daemon's snake-case keys back to StatusDocument's property names,
    /// acronyms included (the client's own decoder gets `peerPID` wrong).
    @Test(arguments: [
        ("peer_pid", "peerPID"), ("peer_uid", "peerUID"), ("current_performance_k_hz", "currentPerformanceKHz"),
        ("last_request", "lastRequest"), ("tid", "tid"), ("uptime_seconds", "uptimeSeconds"), ("vms", "vms"),
    ])
    func statusKeysBecomeThePropertyNames(snake: String, camel: String) {
        #expect(StatusDecoding.camelCase(snake) == camel)
    }

    @Test func aStatusDocumentWithAVMDecodes() throws {
        let json = """
            {"daemon":{"actuator_notes":[],"actuators":"clamp=none","bpf":"not loaded","capabilities":{},"connections":1,\
            "dry_run":false,"pid":7,"recovered_threads":0,"uptime_seconds":1.5,"vcpus":1,"version":"0.1.0"},\
            "vms":[{"actuators":"clamp=none","counters":{"accesses":3,"actuation_errors":0,"invalid_accesses":1,"kicks":2,\
            "polls":0,"requests":1,"restores":0,"threads_gone":0},"id":1,"invalid_accesses":{"bad_width":1},\
            "kick_mode":"always","mirror_mapped":true,"name":"vm","peer_pid":42,"peer_uid":0,"polling":false,\
            "profile":"duo","shared_mapped":true,"vcpus":[{"actuation_errors":0,"capped":false,\
            "current_performance_k_hz":1804000,"domain":0,"hints_applied":1,"index":0,"invalid_accesses":1,"kicks":2,\
            "requests":1,"tid":43}]}]}
            """
        let document = try StatusDecoding.decode(Array(json.utf8))
        #expect(document.vms.first?.peerPID == 42)
        #expect(document.vms.first?.vcpus.first?.currentPerformanceKHz == 1_804_000)
        #expect(document.vms.first?.invalidAccesses == ["bad_width": 1])
        #expect(document.daemon.uptimeSeconds == 1.5)
    }

    @Test func forwardingCountsSubtractFieldByField() {
        var later = ForwardingCounts()
        later.reads = 10; later.postedWrites = 5; later.syncWrites = 2; later.nanoseconds = 1_000
        var earlier = ForwardingCounts()
        earlier.reads = 4; earlier.postedWrites = 5; earlier.nanoseconds = 400
        let delta = later - earlier
        #expect(delta.reads == 6 && delta.postedWrites == 0 && delta.syncWrites == 2 && delta.nanoseconds == 600)
        #expect(delta.forwarded == 8)
    }

    /// Each vCPU's counters are its own; an index the VM lacks is ignored.
    @Test func forwardingCountersArePerVCPU() {
        let counters = ForwardingCounters(vcpuCount: 2)
        counters.add(0, .reads)
        counters.add(1, .postedWrites, 3)
        counters.add(5, .reads)
        counters.add(-1, .reads)
        #expect(counters.snapshot(vcpu: 0).reads == 1)
        #expect(counters.snapshot(vcpu: 1).postedWrites == 3 && counters.snapshot(vcpu: 1).reads == 0)
        #expect(counters.snapshot(vcpu: 5) == ForwardingCounts())
    }

    /// A per-op time excludes the empty run and is absent after a failure.
    @Test func perOperationTimeSubtractsTheEmptyRun() {
        var phase = ProgramReport.VCPUPhase(
            vcpu: 0, asked: "x", operations: 100, exits: .init(), forwarding: .init(), duration: .microseconds(3_050),
            overhead: .microseconds(50))
        #expect(phase.nanosecondsPerOperation == 30_000)
        phase.failure = "boom"
        #expect(phase.nanosecondsPerOperation == nil)
    }
}
