import Testing
@testable import VCPUFreqCore

/// Every interleaving, operation by operation, of the real guest and host
/// code on two threads (a `Schedule` hands the turn over at each memory
/// operation). Proves the protocols' step order: no lost update across the
/// kick-flag transition, no torn slot in either seqlock.
@Suite(.serialized) struct SharedPageInterleavingTests {
    typealias Host = SharedPageHost<ScheduledMemory>
    typealias Guest = SharedPageGuest<ScheduledMemory>

    /// A fresh page with one published-and-consumed request, kicks suppressed
    /// on slot 0 when asked: the state in which the host decides to stop polling.
    static func setUp(suppress: Bool) -> (ScheduleControl, Shared<Host>, ScheduledMemory, ScheduledMemory) {
        let memory = AtomicSharedPageMemory(vcpuCount: 1)
        let control = ScheduleControl()
        let guestView = ScheduledMemory(memory: memory, control: control, party: .guest)
        let hostView = ScheduledMemory(memory: memory, control: control, party: .host)
        var host = Host(memory: hostView, maxPerformanceKHz: [2_000_000])
        host.initialize(pollIntervalMicroseconds: 1000, generation: 1, doorbellCount: 1)
        _ = Guest(memory: guestView, vcpuCount: 1).publish(slot: 0, utilization: 100, performanceKHz: 1_000_000, flags: [.utilValid, .perfValid])
        _ = host.consume(slot: 0)
        if suppress { host.suppressKicks(slots: [0]) }
        return (control, Shared(host), guestView, hostView)
    }

    /// The broken guest a careless driver author might write: it looks at the
    /// kick flag before its final sequence store. Used to show the test can fail.
    static func publishCheckingKickTooEarly(_ memory: ScheduledMemory, utilization: UInt32) -> Bool {
        let base = SharedPageABI.slotOffset(0)
        let even = memory.load(base) & ~1
        memory.store(base, even + 1)
        memory.storeRelease(base + 4, SharedPageABI.GuestFlags.utilValid.rawValue)
        memory.storeRelease(base + 8, utilization)
        memory.storeRelease(base + 12, 0)
        memory.fullFence()
        let kick = memory.load(base + SharedPageABI.Slot.hostFlags) & 1 != 0
        memory.storeRelease(base, even + 2)
        return kick
    }

    /// Runs guest publish ‖ (host requestKicks, then consume of what it
    /// reported) in every interleaving of the guest's 8 operations with the
    /// host's first 7 (enough for the recheck and a consume that gives up as
    /// busy; the rest of the host's work runs after the guest). Counts the
    /// runs that lost the update: no doorbell, and the host did not get it.
    static func kickRearmRace(broken: Bool) -> (lost: Int, runs: Int, paths: Set<String>) {
        var lost = 0, runs = 0
        var paths: Set<String> = []
        for order in allInterleavings(guestOperations: 8, hostOperations: 7) {
            let (control, host, guestView, _) = setUp(suppress: true)
            let rang = Shared(false), read = Shared(SlotRead.unchanged)
            runInterleaved(control, order: order, guest: {
                rang.value = broken
                    ? publishCheckingKickTooEarly(guestView, utilization: 200)
                    : Guest(memory: guestView, vcpuCount: 1).publish(slot: 0, utilization: 200, performanceKHz: 0, flags: [.utilValid])
            }, host: {
                for slot in host.value.requestKicks(slots: [0]) { read.value = host.value.consume(slot: slot) }
            })
            runs += 1
            var got = false
            if case .request(let request, _, _) = read.value { got = request.utilization == 200 }
            paths.insert("rang=\(rang.value) got=\(got)\(read.value == .busy ? " busy" : "")")
            if !rang.value && !got { lost += 1 }
        }
        return (lost, runs, paths)
    }

    @Test func kickRearmNeverLosesAnUpdate() {
        let result = Self.kickRearmRace(broken: false)
        #expect(result.runs == 6435)
        #expect(result.lost == 0)
        // The interleavings reach doorbell-only, recheck-only, both, and a busy recheck saved by the doorbell.
        #expect(result.paths.isSuperset(of: ["rang=true got=false", "rang=false got=true", "rang=true got=true", "rang=true got=false busy"]),
                "\(result.paths)")
    }

    @Test func aGuestThatChecksTheFlagTooEarlyLosesUpdates() {
        let result = Self.kickRearmRace(broken: true)
        #expect(result.lost > 0, "the enumeration must be able to catch a lost update")
    }

    /// Suppression racing with a publication: a guest that saw no kick flag
    /// only ever did so after the host cleared it (the host is polling).
    @Test func suppressionRaceLeavesThePollerInCharge() {
        for order in allInterleavings(guestOperations: 8, hostOperations: 1) {
            let (control, host, guestView, _) = Self.setUp(suppress: false)
            let rang = Shared(true)
            runInterleaved(control, order: order, guest: {
                rang.value = Guest(memory: guestView, vcpuCount: 1).publish(slot: 0, utilization: 300, performanceKHz: 0, flags: [.utilValid])
            }, host: {
                host.value.suppressKicks(slots: [0])
            })
            #expect(!host.value.kicksRequested(slot: 0))
            // The poll that suppression promises finds the update.
            guard case .request(let request, _, _) = host.value.consume(slot: 0) else { Issue.record("poll found nothing"); continue }
            #expect(request.utilization == 300)
        }
    }

    /// Guest publish ‖ host consume: the host gets nothing, "busy", or the
    /// whole new request, never a mix; and a later consume never misses it.
    @Test func consumeNeverSeesATornSlot() {
        let old = GuestRequest(vcpu: 0, performanceKHz: 1_000_000, utilization: 100, latencySensitive: false, boost: false, source: .sharedPage)
        let new = GuestRequest(vcpu: 0, performanceKHz: 1_500_000, utilization: 900, latencySensitive: true, boost: true, source: .sharedPage)
        var outcomes: Set<String> = []
        for order in allInterleavings(guestOperations: 8, hostOperations: 6) {
            let (control, host, guestView, _) = Self.setUp(suppress: false)
            #expect(host.value.consume(slot: 0) == .unchanged, "setup consumed \(old)")
            let read = Shared(SlotRead.noSuchSlot)
            runInterleaved(control, order: order, guest: {
                _ = Guest(memory: guestView, vcpuCount: 1).publish(
                    slot: 0, utilization: 900, performanceKHz: 1_500_000, flags: [.utilValid, .perfValid, .latencySensitive, .boost])
            }, host: {
                read.value = host.value.consume(slot: 0)
            })
            let later = host.value.consume(slot: 0)
            switch read.value {
            case .request(let request, let sequence, let faults):
                #expect(request == new && sequence == 4 && faults.rawValue == 0, "torn: \(request)")
                #expect(later == .unchanged)
                outcomes.insert("new")
            case .unchanged, .busy:
                #expect(later == .request(new, sequence: 4, faults: []))
                outcomes.insert(read.value == .busy ? "busy" : "unchanged")
            case .noSuchSlot:
                Issue.record("impossible")
            }
        }
        #expect(outcomes == ["new", "busy", "unchanged"])
    }

    /// Host publish ‖ guest readHostArea: nil, all old or all new.
    @Test func guestNeverSeesATornHostArea() {
        var outcomes: Set<String> = []
        for order in allInterleavings(guestOperations: 6, hostOperations: 6).map({ $0.map { $0 == .guest ? Party.host : Party.guest } }) {
            let (control, host, guestView, _) = Self.setUp(suppress: false)
            let before = Guest(memory: guestView, vcpuCount: 1).readHostArea(slot: 0)
            let seen = Shared<SharedPageGuest<ScheduledMemory>.HostArea?>(nil)
            runInterleaved(control, order: order, guest: {
                seen.value = Guest(memory: guestView, vcpuCount: 1).readHostArea(slot: 0)
            }, host: {
                host.value.publish(slot: 0, currentPerformanceKHz: 777_000, hint: HostHint(utilMin: 512, utilMax: 600, latency: .slice(microseconds: 400)), flags: [.capped])
            })
            let after = Guest(memory: guestView, vcpuCount: 1).readHostArea(slot: 0)
            #expect(after?.currentPerformanceKHz == 777_000)
            switch seen.value {
            case nil: outcomes.insert("retry")
            case let area? where area == before: outcomes.insert("old")
            case let area? where area == after: outcomes.insert("new")
            case let area?: Issue.record("torn host area \(area)")
            }
        }
        #expect(outcomes.isSuperset(of: ["old", "new"]))
    }
}
