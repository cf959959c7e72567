import Testing
@testable import VCPUFreqCore

/// Replays of hand-built models: `VMModel` promises that out-of-range
/// settings are harmless (PolicyLimits clamps them), so a replay must be too.
@Suite struct ReplaySessionTests {
    /// Found by the device fuzz target (Tests/Fuzz/regressions/device/
    /// negative-min-interval): `settle` turned the setting into a horizon
    /// with `UInt64(minimumIntervalMicroseconds)`, which traps on a negative
    /// value. The policy reads a negative interval as none; so must settle.
    @Test(arguments: [Int(Int32(bitPattern: 0x9B02_0000)), -1, Int.min, Int.max])
    func settleReadsTheIntervalAsThePolicyDoes(minimumIntervalMicroseconds: Int) throws {
        var vm = try SampleTopologies.phone().model(forVM: "android")
        vm.policy.minimumIntervalMicroseconds = minimumIntervalMicroseconds
        var session = ReplaySession(vm: vm)
        let setPerf = DeviceAddressMap.upstreamOffset + 7 * UpstreamABI.windowSize + UpstreamABI.Register.setPerf.rawValue
        session.run(Trace(lines: [
            Trace.Line(number: 1, operation: .write(vcpu: 7, offset: setPerf, value: 2_802_000, width: 4)),
        ]))
        let limits = PolicyLimits(vm: vm)
        if limits.minimumIntervalNanoseconds <= 1_000_000_000 {
            // No interval (or a short one): the request shows in the final hint.
            #expect(session.hints[7].utilMin > 0, "\(session.hints[7])")
        }
        #expect(session.policy.nextDeadline.map { $0 > session.now } ?? true)
    }

    /// Found by the device fuzz target (Tests/Fuzz/regressions/device/
    /// timer-change-before-a-read): a hint the rate limit held back fell due
    /// within the step of a read, and the read of `applied_util` returned
    /// the old value although the change was already made at that time (it
    /// was applied only after the access). The daemon applies a timer's
    /// change when it fires; so must the replay, before the access.
    @Test func aHintDueWithinAReadsStepIsWhatTheReadSees() throws {
        var vm = try SampleTopologies.phone().model(forVM: "android")
        vm.policy.minimumIntervalMicroseconds = 4000
        var session = ReplaySession(vm: vm, stepMicroseconds: 1000)
        let utilHint = DeviceAddressMap.utilHintOffset + 7 * UtilHintABI.windowSize
        let hint = utilHint + UtilHintABI.Register.utilHint.rawValue
        let applied = utilHint + UtilHintABI.Register.appliedUtil.rawValue
        session.step(Trace.Line(number: 1, operation: .write(vcpu: 7, offset: hint, value: 900, width: 4)))
        session.step(Trace.Line(number: 2, operation: .write(vcpu: 7, offset: hint, value: 100, width: 4)))
        let deadline = try #require(session.policy.nextDeadline, "the second hint is held by the rate limit")
        // Wait until less than one step is left, then read: the deadline falls within the read's step.
        let left = (deadline - session.now) / 1000
        session.step(Trace.Line(number: 3, operation: .wait(microseconds: left > 0 ? left - 1 : 0)))
        let before = session.device.utilHintValue(vcpu: 7, register: .appliedUtil)
        session.step(Trace.Line(number: 4, operation: .read(vcpu: 7, offset: applied, width: 4)))
        guard case .access(_, _, let result) = try #require(session.events.last(where: {
            if case .access = $0 { return true } else { return false }
        })) else { return }
        let after = session.device.utilHintValue(vcpu: 7, register: .appliedUtil)
        #expect(before != after, "the held hint changed applied_util at its deadline (\(before) → \(after))")
        #expect(result.value == UInt64(after), "the read returned \(result.value), the device holds \(after)")
    }
}
