import Foundation
import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

extension EndToEnd {
    /// Shared-page requests reach the daemon: through the doorbell when it asks
    /// for kicks, and within `poll_interval_us` when kicks are suppressed —
    /// without a single exit to the VMM either way.
    @Suite struct SharedPageTests {
        /// The sequence the publish op leaves after `count` publishes into a fresh
        /// slot: 2 per publish (odd while writing, even when complete).
        static func sequence(afterPublishes count: UInt32) -> UInt32 { 2 * count }

        /// What the publish op's iteration `i` stores: odd iterations one less (1 for 0).
        static func published(_ value: UInt32, iteration: UInt32) -> UInt32 {
            iteration % 2 == 0 ? value : (value == 0 ? 1 : value - 1)
        }

        /// kick_mode "always": every publish rings (an ioeventfd, completed in
        /// KVM), and the daemon, which never polls in this mode, consumes each
        /// vCPU's latest request: the doorbell is the only way it can learn of it.
        @Test func kickedPublishesReachTheDaemonWithNoExit() throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm("duo")
            let programs = GuestPrograms(addresses: vm.addresses)
            let shared = try #require(vm.shared)
            #expect((0..<2).allSatisfy { shared.kickRequested(vcpu: $0) })
            let count: UInt32 = 25
            let utilization: [UInt32] = [400, 900]
            let scripts: [GuestScript] = (0..<2).map { vcpu in
                [
                    programs.publish(vcpu: vcpu, utilization: utilization[vcpu], flags: [.utilValid], count: count),
                    programs.awaitAcknowledgement(vcpu: vcpu, sequence: Self.sequence(afterPublishes: count), maxSpins: acknowledgementSpins),
                ]
            }
            let runs = try vm.run(scripts, timeout: acknowledgementTimeout).map { try $0.unwrap() }
            for (vcpu, run) in runs.enumerated() {
                #expect(run.results[0].doorbellWrites == UInt64(count))
                #expect(run.results[0].sequence == Self.sequence(afterPublishes: count))
                #expect(!run.results[1].timedOut, "vCPU \(vcpu): the daemon never acknowledged the last publish")
                #expect(run.exits.total == 0)
                #expect(vm.forwarding(vcpu: vcpu).forwarded == 0)
            }
            let status = try #require(try vm.status())
            #expect(status.polling == false)
            #expect(status.counters.polls == 0)
            for vcpu in 0..<2 {
                // Kicks coalesce in the eventfd: at least one wake-up, at most one per publish.
                #expect(status.vcpus[vcpu].kicks >= 1 && status.vcpus[vcpu].kicks <= UInt64(count))
                let last = Self.published(utilization[vcpu], iteration: count - 1)
                #expect(status.vcpus[vcpu].lastRequest == "shared_page util \(last)")
                #expect(shared.acknowledgedSequence(vcpu: vcpu) == Self.sequence(afterPublishes: count))
            }
        }

        /// kick_mode "never": the daemon clears the kick bits and polls every
        /// 50 ms; the guest never rings, and requests are consumed within the
        /// documented bound (measured by the guest itself: publish, then spin
        /// until `ack_sequence` shows it). The interval is long so that the
        /// scheduling noise of a loaded 2-core machine (a few ms for the daemon's
        /// timer and for the spinning vCPU thread) stays small beside it.
        @Test func suppressedPublishesArePickedUpWithinThePollInterval() throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm("polled")
            let programs = GuestPrograms(addresses: vm.addresses)
            let shared = try #require(vm.shared)
            let pollMicroseconds = 50_000
            #expect(shared.header(SharedPageABI.Header.pollIntervalMicroseconds) == UInt32(pollMicroseconds))
            #expect((0..<2).allSatisfy { !shared.kickRequested(vcpu: $0) })

            var delaysMicroseconds: [Double] = []
            let rounds = 10
            for round in 1...rounds {
                // Publish at varying phases of the daemon's poll period.
                usleep(UInt32(round * 7_300 % pollMicroseconds))
                let run = try vm.run(vcpu: round % 2, [
                    programs.publish(vcpu: round % 2, utilization: UInt32(100 + round), flags: [.utilValid]),
                    programs.awaitAcknowledgement(vcpu: round % 2, sequence: shared.guestSequence(vcpu: round % 2) + 2, maxSpins: acknowledgementSpins),
                ], timeout: acknowledgementTimeout)
                #expect(run.results[0].doorbellWrites == 0, "kicks are suppressed: the guest must not ring")
                #expect(!run.results[1].timedOut)
                #expect(run.exits.total == 0)
                delaysMicroseconds.append(Double(run.duration.components.attoseconds) / 1e12 + Double(run.duration.components.seconds) * 1e6)
            }
            let sorted = delaysMicroseconds.sorted()
            print("publish → consumed, kicks suppressed, poll 50 ms: median \(Int(sorted[sorted.count / 2])) µs, max \(Int(sorted.last!)) µs")
            // The bound holds for the typical request. The guest's own measure
            // also counts the vCPU thread's lost CPU time while it spins (load 4
            // on 2 cores here): a late sample is tolerated up to three intervals.
            #expect(sorted[sorted.count / 2] <= Double(pollMicroseconds))
            #expect(sorted.last! <= Double(3 * pollMicroseconds))
            // And the daemon does poll at its interval: over an idle second,
            // about one poll per interval (timer lateness only makes it fewer).
            let pollsBefore = try #require(try vm.status()).counters.polls
            let started = ContinuousClock.now
            usleep(1_000_000)
            let elapsed = ContinuousClock.now - started
            let polls = try #require(try vm.status()).counters.polls - pollsBefore
            let intervals = (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18) * 1e6
                / Double(pollMicroseconds)
            #expect(Double(polls) >= 0.7 * intervals && Double(polls) <= intervals + 2, "\(polls) polls in \(elapsed)")
            let status = try #require(try vm.status())
            #expect(status.polling)
            #expect(status.counters.kicks == 0)
            #expect(status.counters.polls >= 1)
            #expect(status.counters.requests == UInt64(rounds))
        }

        /// A doorbell store KVM cannot complete in-kernel (1 byte wide; the
        /// ioeventfd is 4 bytes) exits, is forwarded as a WRITE, and is still a
        /// kick: the daemon consumes the slot the guest filled by hand.
        @Test func aForwardedDoorbellWriteIsStillAKick() throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm("duo")
            let programs = GuestPrograms(addresses: vm.addresses)
            typealias Slot = SharedPageABI.Slot
            let field = { (offset: Int) in vm.addresses.slotField(offset, vcpu: 0) }
            let run = try vm.run(vcpu: 0, [
                .write32(field(Slot.sequence), value: 1),
                .write32(field(Slot.flags), value: SharedPageABI.GuestFlags.utilValid.rawValue),
                .write32(field(Slot.utilization), value: 321),
                .write32(field(Slot.sequence), value: 2),
                .write(address: vm.addresses.doorbell(vcpu: 0), width: .byte, value: 0, count: 1),
                programs.awaitAcknowledgement(vcpu: 0, sequence: 2, maxSpins: acknowledgementSpins),
            ], timeout: acknowledgementTimeout)
            #expect(!run.results[5].timedOut)
            #expect(run.exits.total == 1 && run.exits.mmioWrites == 1)
            #expect(vm.forwarding(vcpu: 0).postedWrites == 1)
            let status = try #require(try vm.status())
            #expect(status.vcpus[0].kicks == 1)
            #expect(status.vcpus[0].lastRequest == "shared_page util 321")
            #expect(status.counters.invalidAccesses == 0)
        }
    }
}
