import Testing
@testable import VCPUFreqCore

@Suite struct KickScheduleTests {
    let ms: UInt64 = 1_000_000

    @Test func adaptiveSwitchesToPollingOnABurstAndBackWhenIdle() {
        var schedule = KickSchedule(mode: .adaptive, pollIntervalMicroseconds: 1000, burstThreshold: 4, idlePollsBeforeKicks: 3)
        #expect(schedule.start(now: 0) == nil)
        // Three kicks within 1 ms: still kicking.
        for t in [0, 200_000, 400_000] as [UInt64] { #expect(schedule.kicked(now: t) == nil) }
        #expect(!schedule.isPolling)
        // The fourth within the same interval starts polling, due one interval later.
        #expect(schedule.kicked(now: 600_000) == .startPolling)
        #expect(schedule.isPolling && schedule.nextPoll == 1_600_000)
        // Kicks while polling change nothing (a guest that saw the flag late).
        #expect(schedule.kicked(now: 700_000) == nil)
        // Polls that find work keep polling; three idle ones in a row stop it.
        #expect(schedule.polled(now: 1_600_000, updatedSlots: 2) == nil)
        #expect(schedule.nextPoll == 2_600_000)
        #expect(schedule.polled(now: 2_600_000, updatedSlots: 0) == nil)
        #expect(schedule.polled(now: 3_600_000, updatedSlots: 0) == nil)
        #expect(schedule.polled(now: 4_600_000, updatedSlots: 1) == nil, "work resets the idle count")
        #expect(schedule.polled(now: 5_600_000, updatedSlots: 0) == nil)
        #expect(schedule.polled(now: 6_600_000, updatedSlots: 0) == nil)
        #expect(schedule.polled(now: 7_600_000, updatedSlots: 0) == .stopPolling)
        #expect(!schedule.isPolling && schedule.nextPoll == nil)
    }

    @Test func kicksSpreadOverIntervalsNeverTriggerPolling() {
        var schedule = KickSchedule(mode: .adaptive, pollIntervalMicroseconds: 1000, burstThreshold: 4)
        for i in 0..<100 { #expect(schedule.kicked(now: UInt64(i) * 400_000) == nil, "kick \(i)") }
        #expect(!schedule.isPolling)
    }

    @Test func alwaysNeverPolls() {
        var schedule = KickSchedule(mode: .always, pollIntervalMicroseconds: 100)
        #expect(schedule.start(now: 0) == nil)
        for i in 0..<1000 { #expect(schedule.kicked(now: UInt64(i)) == nil) }
        #expect(!schedule.isPolling && schedule.nextPoll == nil)
        #expect(schedule.polled(now: 5 * ms, updatedSlots: 0) == nil)
    }

    @Test func neverPollsFromTheStartForever() {
        var schedule = KickSchedule(mode: .never, pollIntervalMicroseconds: 500, idlePollsBeforeKicks: 1)
        #expect(schedule.start(now: 10) == .startPolling)
        #expect(schedule.start(now: 20) == nil)
        #expect(schedule.nextPoll == 500_010)
        for i in 1...50 { #expect(schedule.polled(now: UInt64(i) * ms, updatedSlots: 0) == nil) }
        #expect(schedule.isPolling && schedule.nextPoll == 50 * ms + 500_000)
    }
}
