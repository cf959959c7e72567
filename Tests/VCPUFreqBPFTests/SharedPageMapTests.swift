import CVCPUFreqSys
import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol
import VCPUFreqVMM

@testable import VCPUFreqBPF

extension KernelTests {
    /// The shared page as a BPF map (docs/bpf.md "Shared pages"): a real
    /// daemon gives a reference-VMM guest its page as an mmapable BPF array
    /// map, the guest publishes into it with plain stores, and the host's BPF
    /// programs read the requests in place at the vCPU thread's scheduling
    /// events — no exit, no syscall, no daemon wake-up — and write back where
    /// the vCPU runs, which the guest reads, again with no exit.
    @Suite(.enabled(if: FileSystems.exists("/dev/kvm"), "no /dev/kvm on this machine"))
    struct SharedPageMaps {
        /// Two one-CPU clusters of different capacity (this machine has 2
        /// CPUs); a VM whose requests the scheduler's programs consume
        /// (kicks off, the daemon polls once a second), capped at 600.
        static let topology = """
            [host]
            name = "bpf-page"
            governor = "none"

            [[host.cluster]]
            name = "little"
            cpus = "0"
            capacity = 512
            frequencies_khz = [500000, 1000000]
            nominal = true

            [[host.cluster]]
            name = "big"
            cpus = "1"
            capacity = 1024
            frequencies_khz = [1000000, 2000000]
            nominal = true

            [[vm]]
            name = "sched"
            vcpus = 2
            clusters = ["little", "big"]
            pin = false
            util_cap = 600

            [vm.policy]
            hysteresis = 0
            min_interval_us = 0
            kick_mode = "scheduler"
            poll_interval_us = 1000000

            """

        /// Guest checks of a word before giving up: seconds of spinning, far
        /// more than the 4 ms tick that reads the slot while the vCPU runs.
        static let waitSpins: UInt64 = 3_000_000_000

        static func daemon(_ name: String, pins: Bool = true, arguments: [String] = []) throws -> (DaemonProcess, String?) {
            let pinDirectory = pins ? Support.testPinPath(name).directory : nil
            let pinArguments = pinDirectory.map { ["--bpf-pin-path", $0 + "/util_hint"] } ?? ["--bpf-pin-path", "none"]
            let daemon = try DaemonProcess(name, arguments: pinArguments + arguments, topology: topology)
            return (daemon, pinDirectory)
        }

        static func removePins(_ directory: String?) {
            guard let directory else { return }
            for name in BPFPins.mapNames { unlink(directory + "/" + name) }
            rmdir(directory)
        }

        static func vm(_ daemon: DaemonProcess, name: String, bpfMapPage: Bool = true) throws -> ConnectedVM {
            try ConnectedVM(
                socketPath: daemon.socketPath,
                options: .init(vmName: name, profile: "sched", vcpuCount: 2, bpfMapPage: bpfMapPage))
        }

        static func pin(_ tid: Int32, toCPU cpu: Int) -> Bool {
            var cpus: [Int32] = [Int32(cpu)]
            return vcpufreq_sys_sched_setaffinity(tid, &cpus, 1) == 0
        }

        static func seen(_ sequence: UInt32, utilization: UInt16?, capped: Bool = false, rejected: Bool = false) -> UInt32 {
            SharedPageABI.SchedulerSeen(
                sequence: UInt16(truncatingIfNeeded: sequence), utilization: utilization, capped: capped, rejected: rejected
            ).word
        }

        @Test("a guest's requests reach the BPF programs in place: no exit, no daemon wake-up; the guest reads where it runs")
        func requestsInPlace() throws {
            let (daemon, pins) = try Self.daemon("bpfpage")
            defer {
                daemon.stop()
                Self.removePins(pins)
            }
            let vm = try Self.vm(daemon, name: "bpf-page")
            let shared = try #require(vm.shared)
            #expect(shared.pageKind == .bpfMap)
            let features = SharedPageABI.Feature(rawValue: shared.header(SharedPageABI.Header.features))
            #expect(features.contains(.hostScheduler))
            #expect((0..<2).allSatisfy { !shared.kickRequested(vcpu: $0) }, "kick mode scheduler: no kicks on a BPF-map page")
            let first = try #require(try vm.status())
            #expect(first.sharedPage == "bpf-map" && first.sharedPageNote == nil)
            #expect(first.polling)

            // The pinned maps say which slot each vCPU thread has (what a scheduler looks up).
            let tids = vm.vcpus.map { Int32($0.threadID) }
            if let bpftool = Support.which("bpftool"), let pins {
                let dump = try Support.run([bpftool, "map", "dump", "pinned", pins + "/vcpu_threads", "-j"])
                #expect(dump.status == 0, "\(dump.error)")
                struct Entry: Decodable {
                    struct Formatted: Decodable {
                        struct Value: Decodable { var vm_index: UInt32; var vcpu: UInt32; var vm_id: UInt32 }
                        var key: UInt32
                        var value: Value
                    }
                    var formatted: Formatted
                }
                let entries = try JSONDecoder().decode([Entry].self, from: Data(dump.output.utf8)).map(\.formatted)
                #expect(Set(entries.map(\.key)) == Set(tids.map(UInt32.init)))
                for entry in entries {
                    #expect(entry.value.vcpu == UInt32(tids.firstIndex(of: Int32(entry.key)) ?? -1))
                    #expect(entry.value.vm_id == vm.attachment.vmID)
                }
            }

            // vCPU 0 runs on the big CPU: its placement must say CPU 1, cluster 1, capacity 1024.
            #expect(Self.pin(tids[0], toCPU: 1))
            let before = try ConnectedVM.status(of: vm.client, allVMs: false)
            let programs = GuestPrograms(addresses: vm.addresses)
            let seenAddress = vm.addresses.slotField(SharedPageABI.Slot.schedulerSeen, vcpu: 0)
            let placementAddress = vm.addresses.slotField(SharedPageABI.Slot.schedulerPlacement, vcpu: 0)
            let requests = 10
            var script: GuestScript = []
            for k in 1...requests {
                let utilization = UInt32(100 + 40 * k)
                script.append(programs.publish(vcpu: 0, utilization: utilization, flags: [.utilValid]))
                script.append(.wait32(
                    address: seenAddress, value: Self.seen(UInt32(2 * k), utilization: UInt16(utilization)),
                    maxSpins: Self.waitSpins))
            }
            script.append(.read32(placementAddress))
            let run = try vm.run(vcpu: 0, script, timeout: .seconds(30))
            let after = try ConnectedVM.status(of: vm.client, allVMs: false)

            for k in 0..<requests {
                #expect(run.results[2 * k].doorbellWrites == 0, "request \(k + 1) rang its doorbell")
                #expect(!run.results[2 * k + 1].timedOut, "request \(k + 1): the BPF programs never showed it seen")
            }
            // No exit: the VMM's own counters, and the kvm tracepoints the programs count
            // (the run's end mark is the one MMIO exit, its re-entry the one -EINTR).
            #expect(run.exits.total == 0, "\(run.exits)")
            let hostBefore = try #require(before.vms.first?.vcpus[0].hostTruth)
            let hostAfter = try #require(after.vms.first?.vcpus[0].hostTruth)
            #expect(hostAfter.exits.userspace(reason: 6) - hostBefore.exits.userspace(reason: 6) == 1)
            #expect(hostAfter.exits.mmioWrites - hostBefore.exits.mmioWrites == 1)
            #expect(hostAfter.exits.kvmExits == hostBefore.exits.kvmExits)

            // No daemon wake-up for the requests: between the two STATUS
            // requests the loop woke for the second STATUS and, at most, its
            // once-a-second poll timer; never for a doorbell.
            let wakeBefore = try #require(before.daemon.wakeups)
            let wakeAfter = try #require(after.daemon.wakeups)
            let timer = wakeAfter.timer - wakeBefore.timer
            #expect(wakeAfter.doorbells == wakeBefore.doorbells)
            #expect(wakeAfter.total - wakeBefore.total <= 1 + timer, "\(wakeBefore) → \(wakeAfter)")
            #expect(timer <= 1 + UInt64(run.duration.components.seconds))
            // What the daemon consumed came from its polls alone.
            let vmBefore = try #require(before.vms.first), vmAfter = try #require(after.vms.first)
            #expect(vmAfter.counters.kicks == vmBefore.counters.kicks)
            #expect(vmAfter.counters.requests - vmBefore.counters.requests <= vmAfter.counters.polls - vmBefore.counters.polls)

            // What the programs recorded: every request, the last one as published.
            let guest = try #require(hostAfter.guest, "no guest samples for vCPU 0")
            let earlier = hostBefore.guest ?? StatusDocument.GuestSamples()
            #expect(guest.newRequests - earlier.newRequests >= UInt64(requests))
            #expect(guest.lastSequence == UInt32(2 * requests))
            #expect(guest.lastUtilization == UInt32(100 + 40 * requests))
            #expect(guest.rejected == 0 && guest.capped == 0)
            #expect(SharedPageABI.GuestFlags(rawValue: guest.lastFlags) == [.utilValid])
            #expect(after.vms.first?.vcpus[1].hostTruth?.guest == nil, "vCPU 1 never published")

            // The host words the programs wrote, as the guest loaded them.
            let placement = try #require(
                SharedPageABI.SchedulerPlacement(word: UInt32(truncatingIfNeeded: run.results[2 * requests].lastValue)))
            #expect(placement.cpu == 1 && placement.cluster == 1 && placement.capacity == 1024, "\(placement)")
            #expect(placement.cpu == hostAfter.lastCPU)
            let (seen, _) = shared.schedulerWords(vcpu: 0)
            #expect(seen == SharedPageABI.SchedulerSeen(sequence: UInt16(2 * requests), utilization: UInt16(100 + 40 * requests)))

            // vcpufreq stats: what the guest asked at the moments the host
            // scheduled it. The guest publishes 201...260, one every 20 ms,
            // on its own vCPU thread while `vcpufreq stats` samples (JSON over
            // 400 ms, then the table over 100 ms).
            let spin = try vm.vcpus[0].calibrateSpin(iterations: 20_000_000)
            var busy: GuestScript = []
            for k in 1...60 {
                busy.append(programs.publish(vcpu: 0, utilization: UInt32(200 + k), flags: [.utilValid]))
                busy.append(.spin(iterations: spin.iterations(for: .milliseconds(20))))
            }
            try vm.vcpus[0].start(script: busy)
            let stats = try DaemonProcess.runTool(["stats", "--socket", daemon.socketPath, "--json", "--interval-ms", "400"])
            let text = try DaemonProcess.runTool(["stats", "--socket", daemon.socketPath, "--interval-ms", "100"])
            let busyRun = try vm.vcpus[0].wait(timeout: .seconds(30))
            #expect(busyRun.exits.total == 0)
            #expect(stride(from: 0, to: busyRun.results.count, by: 2).allSatisfy { busyRun.results[$0].doorbellWrites == 0 })
            #expect(stats.status == 0 && text.status == 0, "\(stats.error) \(text.error)")
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let report = try decoder.decode(StatsReport.self, from: Data(stats.output.utf8))
            let interval = try #require(report.vms.first { $0.name == "bpf-page" }?.vcpus[0].host?.guest, "\(stats.output)")
            #expect(interval.reads >= 1 && interval.newRequests >= 1, "\(interval)")
            let mean = try #require(interval.meanUtilization)
            #expect(mean >= 201 && mean <= 260, "\(interval)")
            #expect(interval.lastUtilization.map { (201...260).contains($0) } == true, "\(interval)")
            let line = try #require(text.output.split(separator: "\n").first { $0.contains("guest at switches/ticks (bpf): ") },
                                    "\(text.output)")
            #expect(!line.contains(" 0 reads"), "\(line)")

            // A VMM that does not ask gets a memfd, and status says why.
            let plain = try Self.vm(daemon, name: "memfd-page", bpfMapPage: false)
            #expect(plain.shared?.pageKind == .memfd)
            let plainStatus = try #require(try plain.status())
            #expect(plainStatus.sharedPage == "memfd")
            #expect(plainStatus.sharedPageNote?.contains("did not ask") == true, "\(plainStatus.sharedPageNote ?? "nil")")

            // The daemon owns every map it pinned and unpins them all when it stops.
            if let pins {
                for name in BPFPins.mapNames { #expect(FileSystems.exists(pins + "/" + name), "\(name) pinned") }
                _ = try vm.detach()
                _ = try plain.detach()
                let log = daemon.stop()
                for name in BPFPins.mapNames {
                    #expect(!FileSystems.exists(pins + "/" + name), "\(name) still pinned after the daemon stopped: \(log)")
                }
            }
        }

        @Test("a hostile guest: out-of-range values and torn sequences never get past the caps")
        func hostileGuest() throws {
            let (daemon, pins) = try Self.daemon("bpfhostile", pins: false)
            defer {
                daemon.stop()
                Self.removePins(pins)
            }
            let vm = try Self.vm(daemon, name: "hostile")
            let shared = try #require(vm.shared)
            try #require(shared.pageKind == .bpfMap)
            let spin = try vm.vcpus[0].calibrateSpin(iterations: 20_000_000)
            typealias Slot = SharedPageABI.Slot
            let field = { (offset: Int) in vm.addresses.slotField(offset, vcpu: 0) }
            let utilValid = SharedPageABI.GuestFlags.utilValid.rawValue
            let perfValid = SharedPageABI.GuestFlags.perfValid.rawValue
            func guestSamples() throws -> StatusDocument.GuestSamples {
                try #require(try vm.status()?.vcpus[0].hostTruth).guest ?? StatusDocument.GuestSamples()
            }

            // A guest stuck mid-write (odd sequence) with a wild value: ticks
            // find it busy; nothing is ever read from it.
            var run = try vm.run(vcpu: 0, [
                .write32(field(Slot.sequence), value: 1),
                .write32(field(Slot.flags), value: utilValid),
                .write32(field(Slot.utilization), value: 0xFFFF_FFFF),
                .spin(iterations: spin.iterations(for: .milliseconds(60))),
                .read32(field(Slot.schedulerSeen)),
            ])
            #expect(run.results[4].lastValue == 0, "a busy slot was read")
            var samples = try guestSamples()
            #expect(samples.busy >= 1 && samples.reads == 0, "\(samples)")

            // Out of range: utilization above 1024, unknown flag bits → cut
            // to the VM's cap (600), capped and rejected.
            run = try vm.run(vcpu: 0, [
                .write32(field(Slot.flags), value: utilValid | 0x100),
                .write32(field(Slot.utilization), value: 5000),
                .write32(field(Slot.sequence), value: 2),
                .wait32(address: field(Slot.schedulerSeen), value: Self.seen(2, utilization: 600, capped: true, rejected: true), maxSpins: Self.waitSpins),
                // Within 0...1024 but above the cap: capped only.
                .write32(field(Slot.sequence), value: 3),
                .write32(field(Slot.flags), value: utilValid),
                .write32(field(Slot.utilization), value: 700),
                .write32(field(Slot.sequence), value: 4),
                .wait32(address: field(Slot.schedulerSeen), value: Self.seen(4, utilization: 600, capped: true), maxSpins: Self.waitSpins),
                // A performance request above every table entry: cut to the VM's fastest vCPU, rejected.
                .write32(field(Slot.sequence), value: 5),
                .write32(field(Slot.flags), value: perfValid),
                .write32(field(Slot.performanceKHz), value: 0xFFFF_FFFF),
                .write32(field(Slot.sequence), value: 6),
                .wait32(address: field(Slot.schedulerSeen), value: Self.seen(6, utilization: nil, rejected: true), maxSpins: Self.waitSpins),
            ])
            for index in [3, 8, 13] { #expect(!run.results[index].timedOut, "op \(index): never seen as expected") }
            #expect(run.exits.total == 0)
            samples = try guestSamples()
            #expect(samples.lastSequence == 6 && samples.lastPerformanceKHz == 2_000_000 && samples.lastUtilization == nil, "\(samples)")
            #expect(samples.rejected >= 2 && samples.capped >= 2)

            // Torn sequences: a guest rewriting its slot as fast as it can
            // with values far above the cap, while the programs read it at
            // every tick. Each read is either refused (busy) or cut to the cap:
            // the sum of what was read is exactly 600 per read.
            let base = try guestSamples()
            run = try vm.run(vcpu: 0, [
                .publish(
                    slot: vm.addresses.slot(vcpu: 0), utilization: 50_000, performanceKHz: 0, flags: [.utilValid],
                    doorbell: vm.addresses.doorbell(vcpu: 0), count: 3_000_000),
            ], timeout: .seconds(30))
            #expect(run.results[0].doorbellWrites == 0 && run.exits.total == 0)
            let torn = try guestSamples()
            let reads = torn.utilizationReads - base.utilizationReads
            print("hostile publish loop: \(reads) reads, \(torn.busy - base.busy) busy, in \(run.duration)")
            #expect(reads >= 1, "no tick read the slot during the publish loop")
            #expect(torn.utilizationSum - base.utilizationSum == 600 * reads)
            // Each of them capped and rejected (above 1024); the run's first
            // wake-up may also have read the previous perf-only request.
            #expect(torn.capped - base.capped == reads && torn.rejected - base.rejected >= reads)
        }

        /// The programs read vCPU 0's slot on vCPU 0's CPU; a guest can write
        /// any slot, so vCPU 1, on the other CPU, rewrites slot 0 while they
        /// read it: each round first stores an odd sequence, an unknown flag
        /// bit and a utilization far above the cap, waits, then stores a clean
        /// request (utilization 300) and an even sequence, and waits again. A
        /// read that let any field through outside a complete publication
        /// would count as rejected or capped, or add something other than 300.
        @Test("torn reads across CPUs: a guest rewriting its slot from another vCPU never gets a half-written value past the seqlock")
        func tornReadsAcrossCPUs() throws {
            let (daemon, _) = try Self.daemon("bpftorn", pins: false)
            defer { daemon.stop() }
            let vm = try Self.vm(daemon, name: "torn")
            try #require(vm.shared?.pageKind == .bpfMap)
            let tids = vm.vcpus.map { Int32($0.threadID) }
            try #require(Self.pin(tids[0], toCPU: 0) && Self.pin(tids[1], toCPU: 1), "this test needs 2 CPUs")
            typealias Slot = SharedPageABI.Slot
            let field = { (offset: Int) in vm.addresses.slotField(offset, vcpu: 0) }
            let utilValid = SharedPageABI.GuestFlags.utilValid.rawValue
            let spin = try vm.vcpus[1].calibrateSpin(iterations: 20_000_000)
            let half = spin.iterations(for: .microseconds(150))
            // 8 ops a round: 127 rounds fill a script (1024 ops, END included).
            var writer: GuestScript = []
            for round in 0..<127 {
                let sequence = UInt32(2 * round + 2)
                for op: GuestOp in [
                    .write32(field(Slot.sequence), value: sequence + 1),
                    .write32(field(Slot.flags), value: utilValid | 0x100),
                    .write32(field(Slot.utilization), value: 50_000),
                    .spin(iterations: half),
                    .write32(field(Slot.flags), value: utilValid),
                    .write32(field(Slot.utilization), value: 300),
                    .write32(field(Slot.sequence), value: sequence + 2),
                    .spin(iterations: half),
                ] { writer.append(op) }
            }
            let reader: GuestScript = [.spin(iterations: spin.iterations(for: .milliseconds(60)))]
            let base = try #require(try vm.status()?.vcpus[0].hostTruth)
            var runs = 0
            var samples = base.guest ?? StatusDocument.GuestSamples()
            let start = ContinuousClock.now
            // Until the reads during odd windows show the race was on (or 20 rounds).
            while runs < 20, runs < 4 || samples.busy - (base.guest?.busy ?? 0) < 20 {
                for result in vm.run([reader, writer], timeout: .seconds(30)) {
                    let run = try result.get()
                    #expect(run.exits.total == 0)
                }
                runs += 1
                samples = try #require(try vm.status()?.vcpus[0].hostTruth?.guest)
            }
            let earlier = base.guest ?? StatusDocument.GuestSamples()
            let reads = samples.utilizationReads - earlier.utilizationReads
            let busy = samples.busy - earlier.busy
            print("torn reads across CPUs: \(runs) runs in \(ContinuousClock.now - start), \(reads) reads, \(busy) busy")
            #expect(busy >= 1, "no read ever met the writer mid-publication: the race was not exercised")
            #expect(reads >= 1, "no consistent read")
            #expect(samples.rejected == earlier.rejected, "a half-written publication (unknown flag) was read")
            #expect(samples.capped == earlier.capped, "a half-written publication (utilization 50000) was read")
            #expect(samples.utilizationSum - earlier.utilizationSum == 300 * reads)
        }

        @Test("without BPF (--no-bpf) the page is a memfd, status says so, and kicks carry the requests")
        func memfdFallback() throws {
            let (daemon, _) = try Self.daemon("bpfoff", pins: false, arguments: ["--no-bpf"])
            defer { daemon.stop() }
            let vm = try Self.vm(daemon, name: "fallback")
            let shared = try #require(vm.shared)
            #expect(shared.pageKind == .memfd)
            #expect(!SharedPageABI.Feature(rawValue: shared.header(SharedPageABI.Header.features)).contains(.hostScheduler))
            #expect(vm.client.hello.features & ProtocolFeature.bpfMapPage == 0, "granted without BPF")
            let status = try ConnectedVM.status(of: vm.client, allVMs: false)
            #expect(status.daemon.capabilities["bpf_map_page"]?.hasPrefix("unavailable: ") == true)
            let mine = try #require(status.vms.first)
            #expect(mine.sharedPage == "memfd")
            #expect(mine.sharedPageNote?.contains("--no-bpf") == true, "\(mine.sharedPageNote ?? "nil")")
            // Kick mode scheduler on a memfd page is adaptive: kicks wanted, the daemon consumes.
            #expect(shared.kickRequested(vcpu: 0))
            let programs = GuestPrograms(addresses: vm.addresses)
            let run = try vm.run(vcpu: 0, [
                programs.publish(vcpu: 0, utilization: 300, flags: [.utilValid]),
                programs.awaitAcknowledgement(vcpu: 0, sequence: 2, maxSpins: Self.waitSpins),
            ])
            #expect(run.results[0].doorbellWrites == 1 && !run.results[1].timedOut)
            #expect(shared.schedulerWords(vcpu: 0).seen == nil && shared.schedulerWords(vcpu: 0).placement == nil)
            #expect(try vm.status()?.vcpus[0].lastRequest == "shared_page util 300")
        }
    }
}
