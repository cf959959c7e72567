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
}
