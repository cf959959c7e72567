import Foundation
import Glibc
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqProtocol

extension AttachedVM {
    /// MAP_SHARED, mapped into this process as the VMM would.
    func mapShared(mirror: Bool = true, doorbells: Bool = true) throws -> MappedShared {
        try MappedShared(try client.mapShared(mirror: mirror, doorbells: doorbells), vcpuCount: threads.tids.count)
    }
}

extension DaemonTests {
    @Suite struct SharedPage {
        /// SHARED_OK's layout, checked against docs/protocol.md and abi.md
        /// by hand: a 64-byte header + 2 × 64-byte slots round up to one
        /// 4 KiB page; the mirror is 2 upstream windows of 0x1000.
        @Test func layoutAndHeader() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            let layout = shared.shared.layout
            #expect(layout.pageOffset == 0)
            #expect(layout.pageSize == 4096)
            #expect(layout.pageDeviceOffset == 0x80_0000)
            #expect(layout.mirrorOffset == 4096)
            #expect(layout.mirrorSize == 0x2000)
            #expect(layout.mirrorDeviceOffset == 0)
            #expect(layout.memfdSize == 4096 + 0x2000)
            #expect(layout.doorbellDeviceOffset == 0x88_0000)
            #expect(layout.doorbellStride == 4)
            #expect(layout.doorbellCount == 2)
            #expect(layout.doorbellMessages == 1)
            #expect(shared.shared.doorbells.count == 2)

            let memory = shared.memory
            #expect(memory.load(0x00) == 0x4650_4356)  // "VCPF"
            #expect(memory.load(0x04) == 1)  // ABI version
            #expect(memory.load(0x08) == 0x1F)  // every feature offered
            #expect(memory.load(0x0c) & 1 == 1)  // host status: active
            #expect(memory.load(0x10) == 2)  // vCPUs
            #expect(memory.load(0x14) == 64 && memory.load(0x18) == 64)
            #expect(memory.load(0x1c) == 1000)  // poll_interval_us of the profile
            #expect(memory.load(0x24) == 2)  // doorbells
            // Each host area: cur_perf = the max here, kick wanted (kick_mode always).
            for slot in 0..<2 {
                let area = try #require(shared.guest.readHostArea(slot: slot))
                #expect(area.currentPerformanceKHz == TestTopology.maxKHz)
                #expect(area.flags.contains(.kick))
            }
            // MAP_SHARED is answered once per VM.
            #expect(throws: ClientError.self) { try vm.client.mapShared(mirror: false, doorbells: false) }
        }

        /// The guest writes its slot and rings; the daemon reads that slot
        /// and applies the hint; the host area and the ack show it.
        @Test func kickedRequestIsApplied() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            let published = try shared.publish(slot: 0, utilization: 600, flags: [.utilValid])
            #expect(published.kicked)
            #expect(eventually { shared.guest.acknowledgedSequence(slot: 0) == published.sequence })
            #expect(eventually { shared.guest.readHostArea(slot: 0)?.utilMin == 600 })
            #expect(shared.guest.readHostArea(slot: 0)?.utilMax == 1000)
            // Slot 1 was not consumed: only the kicked slot is read.
            #expect(shared.guest.acknowledgedSequence(slot: 1) == 0)

            // A performance request in slot 1: 1,000,000 kHz → 512.
            let second = try shared.publish(slot: 1, performanceKHz: 1_000_000, flags: [.perfValid])
            #expect(eventually { shared.guest.acknowledgedSequence(slot: 1) == second.sequence })
            #expect(eventually { shared.guest.readHostArea(slot: 1)?.utilMin == UInt16(TestTopology.utilization(forKHz: 1_000_000)) })

            let applies = vm.applies()
            #expect(applies.suffix(2) == [
                Applied(vcpu: 0, utilMin: 600, utilMax: 1000, cpus: pinText(0)),
                Applied(vcpu: 1, utilMin: 512, utilMax: 1000, cpus: pinText(1)),
            ])
            let status = try #require(try vm.client.status().vms.first)
            #expect(status.counters.kicks == 2)
            #expect(status.vcpus.map(\.kicks) == [1, 1])
            #expect(status.vcpus[0].lastRequest == "shared_page util 600")
            #expect(status.sharedMapped && status.mirrorMapped)

            // A doorbell write that reaches the daemon as a forwarded WRITE
            // (no ioeventfd registered) is a kick too.
            let third = shared.guest.publish(slot: 0, utilization: 100, performanceKHz: 0, flags: [.utilValid])
            #expect(third)
            try vm.client.write(vcpu: 0, offset: Offset.doorbell(0), value: 1)
            #expect(eventually { shared.guest.readHostArea(slot: 0)?.utilMin == 100 })
        }

        /// A latency-sensitive request sets the EEVDF slice on the live
        /// thread (latency_slice_us 400); a plain one puts the original back.
        @Test func latencyFlagSetsTheSlice() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            let tid = vm.threads.tids[1]
            try shared.publish(slot: 1, utilization: 200, flags: [.utilValid, .latencySensitive])
            #expect(eventually { LiveAttributes.slice(tid) == 400_000 }, "\(LiveAttributes.of(tid))")
            #expect(eventually { shared.guest.readHostArea(slot: 1)?.appliedSliceMicroseconds == 400 })
            // The other thread is untouched.
            #expect(LiveAttributes.slice(vm.threads.tids[0]) == vm.threads.originals[0].sliceNanoseconds)

            try shared.publish(slot: 1, utilization: 200, flags: [.utilValid])
            #expect(eventually { LiveAttributes.slice(tid) == vm.threads.originals[1].sliceNanoseconds })
            #expect(vm.applies().suffix(2).map(\.latency) == ["slice=400us", "none"])
        }

        /// Profile "nice": the latency hint is a nice value (-7), read back
        /// with getpriority.
        @Test func latencyFlagSetsNice() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon, profile: "nice")
            #expect(vm.attach.actuators.contains("latency=nice"))
            let shared = try vm.mapShared()
            let tid = vm.threads.tids[0]
            try shared.publish(slot: 0, utilization: 10, flags: [.utilValid, .latencySensitive])
            #expect(eventually { LiveAttributes.nice(tid) == -7 })
            try shared.publish(slot: 0, utilization: 10, flags: [.utilValid])
            #expect(eventually { LiveAttributes.nice(tid) == vm.threads.originals[0].nice })
        }

        /// kick_mode never: the host clears the kick flag, the guest does not
        /// ring, and the daemon still picks every request up within
        /// poll_interval_us (5 ms) — measured here from publish to ack.
        @Test func suppressedKicksArePolledWithinTheInterval() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon, profile: "polled")
            let shared = try vm.mapShared()
            #expect(shared.memory.load(0x1c) == 5000)
            #expect(eventually { shared.guest.readHostArea(slot: 0)?.flags.contains(.kick) == false })
            let intervalNanoseconds: UInt64 = 5_000_000
            var delays: [UInt64] = []
            for round in 0..<20 {
                let slot = round % 2
                let start = DispatchTime.now().uptimeNanoseconds
                let published = try shared.publish(slot: slot, utilization: UInt32(100 + round), flags: [.utilValid])
                #expect(!published.kicked)
                let seen = eventually(timeoutSeconds: 2) { shared.guest.acknowledgedSequence(slot: slot) == published.sequence }
                #expect(seen)
                delays.append(DispatchTime.now().uptimeNanoseconds - start)
                usleep(UInt32.random(in: 0...3000))
            }
            delays.sort()
            // The bound is one interval; the margin covers the timer's slack
            // and this 2-CPU machine running other tests at the same time.
            let median = delays[delays.count / 2]
            #expect(median <= intervalNanoseconds + 2_000_000, "delays (ns): \(delays)")
            // The worst case only has to show the request was polled, not
            // lost: other test suites may run real-time threads meanwhile.
            #expect(delays.last! <= intervalNanoseconds + 200_000_000, "delays (ns): \(delays)")
            #expect(eventually { shared.guest.readHostArea(slot: 1)?.utilMin == 119 })

            let status = try #require(try vm.client.status().vms.first)
            #expect(status.kickMode == "never")
            #expect(status.polling)
            #expect(status.counters.kicks == 0)
            #expect(status.counters.polls > 0)
            #expect(status.counters.requests == 20)
        }

        /// kick_mode adaptive: a burst of kicks makes the daemon poll (kick
        /// flag cleared), and idle polls give the kicks back.
        @Test func adaptiveModeSwitchesToPollingAndBack() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon, profile: "adaptive")
            let shared = try vm.mapShared()
            #expect(shared.guest.readHostArea(slot: 0)?.flags.contains(.kick) == true)
            // Four kicks within one 100 ms interval.
            for round in 0..<4 {
                let published = try shared.publish(slot: 0, utilization: UInt32(10 * round + 10), flags: [.utilValid])
                #expect(published.kicked)
                #expect(eventually { shared.guest.acknowledgedSequence(slot: 0) == published.sequence })
            }
            #expect(eventually { shared.guest.readHostArea(slot: 0)?.flags.contains(.kick) == false })
            // While polling, an unkicked request is still picked up.
            let quiet = try shared.publish(slot: 1, utilization: 77, flags: [.utilValid])
            #expect(!quiet.kicked)
            #expect(eventually { shared.guest.acknowledgedSequence(slot: 1) == quiet.sequence })
            // 8 idle polls (800 ms) later, kicks are wanted again.
            #expect(eventually(timeoutSeconds: 3) { shared.guest.readHostArea(slot: 0)?.flags.contains(.kick) == true })
            let status = try #require(try vm.client.status().vms.first)
            #expect(!status.polling)
            #expect(status.counters.kicks == 4)
        }

        /// The read-only mirror: cur_perf equals a READ of cur_perf;
        /// perftbl_len and perf_domain are there; a SYNC perftbl_sel write
        /// updates perftbl_rd before WRITE_OK.
        @Test func mirrorFollowsTheDevice() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared(mirror: true, doorbells: false)
            #expect(shared.shared.doorbells.isEmpty)
            #expect(shared.memory.load(0x24) == 0)  // no doorbells
            for vcpu in 0..<2 {
                let read = try vm.client.read(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.curPerf)).value
                #expect(UInt64(shared.mirrorWord(vcpu: vcpu, .curPerf)) == read)
                #expect(shared.mirrorWord(vcpu: vcpu, .perftblLen) == 3)
                #expect(shared.mirrorWord(vcpu: vcpu, .perfDomain) == UInt32(vcpu))
                #expect(shared.mirrorWord(vcpu: vcpu, .setPerf) == 0)
                for (index, entry) in TestTopology.tableKHz.enumerated() {
                    try vm.client.write(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.perftblSel), value: UInt64(index), sync: true)
                    #expect(shared.mirrorWord(vcpu: vcpu, .perftblRd) == entry)
                }
                try vm.client.write(vcpu: vcpu, offset: Offset.upstream(vcpu, Offset.perftblSel), value: 7, sync: true)
                #expect(shared.mirrorWord(vcpu: vcpu, .perftblRd) == 0)
            }
            // A store to the mirror exits and is forwarded: read-only register, dropped.
            let store = try vm.client.write(vcpu: 0, offset: Offset.upstream(0, Offset.curPerf), value: 5, sync: true)
            #expect(store == invalidCode(.writeToReadOnly))
            #expect(UInt64(shared.mirrorWord(vcpu: 0, .curPerf)) == UInt64(TestTopology.maxKHz))
        }

        /// DETACH restores the threads (slice and affinity), the connection
        /// can attach again, and an old doorbell rung after the detach is
        /// harmless.
        @Test func detachRestoresAndOldDoorbellsAreHarmless() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            try shared.publish(slot: 0, utilization: 500, flags: [.utilValid, .latencySensitive])
            #expect(eventually { LiveAttributes.slice(vm.threads.tids[0]) == 400_000 })
            #expect(!vm.threads.restored)
            #expect(vm.daemon.journalEntries().count == 2)

            #expect(try vm.client.detach() == 2)
            #expect(vm.threads.restored, "\(vm.threads.live) vs \(vm.threads.originals)")
            #expect(vm.daemon.journalEntries().isEmpty)
            // The host marked the page inactive.
            #expect(shared.memory.load(0x0c) & 1 == 0)

            // Rings for a VM that is gone change nothing and break nothing.
            try shared.publish(slot: 0, utilization: 900, flags: [.utilValid, .latencySensitive])
            try shared.ring(0)
            try shared.ring(1)
            usleep(20_000)
            #expect(vm.threads.restored)
            // The connection may attach again (same threads, a new VM id).
            let again = try vm.client.attach(vmName: "guest", profile: "regs", threadIDs: vm.threads.tids)
            #expect(again.vmID != vm.attach.vmID)
            #expect(vm.threads.live.map(\.cpus) == TestTopology.pinnedCPUs)
            #expect(try vm.client.detach() == 2)
            #expect(vm.threads.restored)
        }
    }
}

/// CPU time (user + system) a process has used, ns: fields 14 and 15 of
/// /proc/<pid>/stat in clock ticks.
func cpuTimeNanoseconds(_ pid: Int32) -> UInt64? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    let fields = text[text.index(after: close)...].split(separator: " ")
    guard fields.count > 12, let user = UInt64(fields[14 - 3]), let system = UInt64(fields[15 - 3]) else { return nil }
    let ticks = UInt64(sysconf(Int32(_SC_CLK_TCK)))
    return (user + system) * 1_000_000_000 / max(ticks, 1)
}

extension DaemonTests.SharedPage {
    /// Doorbell writes forwarded as WRITEs by a VMM that never mapped the
    /// page, in a burst that would switch kick_mode adaptive to polling:
    /// there is no page to poll, so the daemon must stay idle (it used to
    /// re-arm its timer for a poll that never moved on: a busy loop).
    @Test func doorbellBurstWithoutAPageLeavesTheDaemonIdle() throws {
        let daemon = try Daemon(topology: TestTopology.toml(), metrics: false)
        let vm = try AttachedVM(daemon: daemon, profile: "adaptive")
        for _ in 0..<10 { try vm.client.write(vcpu: 0, offset: Offset.doorbell(0), value: 1) }
        #expect(try vm.client.status().vms.first?.counters.kicks == 10)
        let before = try #require(cpuTimeNanoseconds(daemon.pid))
        usleep(300_000)
        let used = try #require(cpuTimeNanoseconds(daemon.pid)) - before
        #expect(used < 60_000_000, "the daemon used \(used / 1_000_000) ms of CPU in 300 ms while idle")
        #expect(try vm.client.status().vms.first?.polling == false)
    }
}

extension DaemonTests {
    @Suite struct BusyPoll {
        /// CPU time (user + system) of a process so far, in clock ticks.
        static func cpuTicks(_ pid: Int32) -> Int {
            guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = text.lastIndex(of: ")")
            else { return 0 }
            let fields = text[text.index(after: close)...].split(separator: " ")
            // After the comm: state is field 3, utime 14, stime 15 (1-based).
            guard fields.count > 12, let user = Int(fields[11]), let system = Int(fields[12]) else { return 0 }
            return user + system
        }

        /// With --busy-poll-us the daemon serves requests as before and, once
        /// the window after the last request has passed, sleeps again.
        @Test func busyPollingServesRequestsThenSleeps() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), arguments: ["--busy-poll-us", "20000"])
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            for utilization: UInt32 in [300, 700, 300, 900] {
                try shared.publish(slot: 0, utilization: utilization, flags: [.utilValid])
                #expect(eventually { shared.guest.readHostArea(slot: 0)?.utilMin == UInt16(utilization) })
            }
            try vm.client.write(vcpu: 1, offset: Offset.utilHint(1, 0x00), value: 450)
            #expect(eventually { shared.guest.readHostArea(slot: 1)?.utilMin == 450 })
            // The window (20 ms) ends; then 500 ms idle must cost the daemon
            // far less than a CPU (a spinning daemon would use ~50 ticks).
            usleep(100_000)
            let before = Self.cpuTicks(daemon.pid)
            usleep(500_000)
            let spent = Self.cpuTicks(daemon.pid) - before
            #expect(spent <= 5, "the daemon used \(spent) ticks in 500 ms of idle")
        }

        /// During the window the daemon really polls: it uses CPU with no
        /// request in flight (a sleeping daemon would use none).
        @Test func theWindowKeepsTheDaemonAwake() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), arguments: ["--busy-poll-us", "400000"])
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            try shared.publish(slot: 0, utilization: 640, flags: [.utilValid])
            #expect(eventually { shared.guest.readHostArea(slot: 0)?.utilMin == 640 })
            let before = Self.cpuTicks(daemon.pid)
            usleep(200_000)
            let spent = Self.cpuTicks(daemon.pid) - before
            #expect(spent >= 4, "the daemon used only \(spent) ticks in 200 ms of its 400 ms busy-poll window")
        }

        @Test func outOfRangeBusyPollIsRefusedNamingTheFlag() throws {
            let result = try runProgram([vcpufreqBinary, "serve", "--topology", "/dev/null", "--socket", "/tmp/x", "--busy-poll-us", "-1"])
            #expect(result.status != 0)
            #expect(result.error.contains("--busy-poll-us"))
        }
    }
}
