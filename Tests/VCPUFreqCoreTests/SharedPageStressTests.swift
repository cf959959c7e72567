import CVCPUFreqABI
import Synchronization
import Testing
@testable import VCPUFreqCore

/// Real concurrency: a guest thread publishes increasing values while a host
/// thread consumes them, switching between kicks and polling all along. The
/// host must never see a torn slot or a value going backwards, and must end
/// with the last value without a final poll in kick mode.
@Suite(.serialized) struct SharedPageStressTests {
    static let publications: UInt32 = 200_000

    /// Guest implementations: the Swift reference and the C header's helper.
    enum GuestKind: String, CaseIterable, Sendable { case swift, c }

    @Test(arguments: GuestKind.allCases)
    func lastValueIsAlwaysObservedAndNeverTorn(guest kind: GuestKind) {
        let memory = AtomicSharedPageMemory(vcpuCount: 1)
        var host = SharedPageHost(memory: memory, maxPerformanceKHz: [UInt32.max])
        host.initialize(pollIntervalMicroseconds: 100, generation: 1, doorbellCount: 1)
        let doorbell = Atomic<Int>(0)
        let guestDone = Atomic<Bool>(false)
        let rings = Atomic<Int>(0)
        let count = Self.publications

        let guestThread = TestThread {
            let guest = SharedPageGuest(memory: memory, vcpuCount: 1)
            let slot = memory.rawPointer.advanced(by: SharedPageABI.slotOffset(0)).assumingMemoryBound(to: vcpufreq_slot.self)
            for value in 1...count {
                // Fields that must agree with each other: utilization and the
                // boost flag are functions of the performance value.
                var flags: SharedPageABI.GuestFlags = [.utilValid, .perfValid]
                if value & 1 == 1 { flags.insert(.boost) }
                let ring: Bool
                switch kind {
                case .swift: ring = guest.publish(slot: 0, utilization: value % 1024, performanceKHz: value, flags: flags)
                case .c: ring = vcpufreq_slot_publish(slot, flags.rawValue, value % 1024, value) != 0
                }
                if ring {
                    doorbell.add(1, ordering: .releasing)
                    rings.add(1, ordering: .relaxed)
                }
            }
            guestDone.store(true, ordering: .releasing)
        }

        var lastSeen: UInt32 = 0, torn = 0, backwards = 0, iterations = 0, polling = false, consumed = 0
        func take(_ read: SlotRead) {
            guard case .request(let request, _, _) = read else { return }
            consumed += 1
            let value = request.performanceKHz ?? 0
            if request.utilization != value % 1024 || request.boost != (value & 1 == 1) { torn += 1 }
            if value < lastSeen { backwards += 1 }
            lastSeen = value
        }
        while true {
            iterations += 1
            let done = guestDone.load(ordering: .acquiring)
            if polling {
                take(host.consume(slot: 0))
                if iterations % 512 == 0 {
                    polling = false
                    for slot in host.requestKicks(slots: [0]) { take(host.consume(slot: slot)) }
                }
            } else {
                if doorbell.exchange(0, ordering: .acquiring) > 0 { take(host.consume(slot: 0)) }
                if iterations % 700 == 0 {
                    polling = true
                    host.suppressKicks(slots: [0])
                }
            }
            if done {
                // Kick mode: every update since is covered by a doorbell already
                // counted (the guest rang before `done`); polling mode: one more poll.
                if polling { take(host.consume(slot: 0)) } else if doorbell.exchange(0, ordering: .acquiring) > 0 { take(host.consume(slot: 0)) }
                break
            }
        }
        guestThread.join()
        #expect(torn == 0)
        #expect(backwards == 0)
        #expect(lastSeen == count, "the last publication was lost")
        #expect(host.counters.consumed == UInt64(consumed))
        #expect(rings.load(ordering: .relaxed) > 0, "kick mode was exercised")
    }
}
