import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

extension EndToEnd {
    /// A misbehaving guest — invalid accesses of every kind, random garbage over
    /// the whole device space, garbage in its shared page slot, a storm of kicks —
    /// never breaks the daemon or another VM: a second VM served by the same
    /// daemon at the same time keeps getting exactly the right answers, and
    /// STATUS counts the vandal's invalid accesses by kind.
    @Suite struct MisbehaviourTests {
        /// Deterministic pseudo-random numbers (SplitMix64), so a failure replays.
        struct SplitMix64 {
            var state: UInt64
            mutating func next() -> UInt64 {
                state &+= 0x9E37_79B9_7F4A_7C15
                var z = state
                z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
                z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
                return z ^ (z >> 31)
            }
            mutating func next(below bound: UInt64) -> UInt64 { next() % bound }
        }

        /// One access of each invalid kind (some twice), with the kind docs/abi.md
        /// assigns it — classified here by hand from the ABI table, not by the
        /// device model. vCPU 0 of a 2-vCPU VM with the mirror and doorbells mapped.
        static func invalidAccesses(_ a: DeviceAddresses) -> [(GuestOp, kind: String)] {
            [
                (.write(address: a.upstream(.setPerf, vcpu: 0), width: .word16, value: 1_000, count: 1), "bad_width"),
                (.read(address: a.utilHint(.curFreq, vcpu: 0), width: .word64, count: 1), "bad_width"),
                (.write32(a.upstreamWindow(vcpu: 0) + 0x06, value: 1_000_000), "unaligned"),
                (.write(address: a.doorbell(vcpu: 0) + 1, width: .byte, value: 1, count: 1), "unaligned"),
                (.write32(a.upstream(.curPerf, vcpu: 0), value: 5), "write_to_read_only"),
                (.read32(a.utilHint(.utilHint, vcpu: 0)), "read_of_write_only"),
                (.read32(a.doorbell(vcpu: 0)), "read_of_write_only"),
                (.read32(a.utilHint(.utilHint, vcpu: 0) + 0x100), "unmapped"),
                (.read32(a.sharedPage + 0x1_0000), "unmapped"),
                (.read32(a.upstreamWindow(vcpu: 5)), "beyond_last_vcpu"),
                (.write32(a.doorbell(vcpu: 7), value: 7), "beyond_last_vcpu"),
                (.write32(a.utilHint(.freqtblSel, vcpu: 0), value: 999), ""),
                (.read32(a.utilHint(.freqtblRd, vcpu: 0)), "table_index_out_of_range"),
                (.write32(a.upstream(.setPerf, vcpu: 0), value: 0), "performance_zero"),
                (.write32(a.upstream(.setPerf, vcpu: 0), value: 0xFFFF_FFFF), "performance_above_max"),
                (.write32(a.utilHint(.utilHint, vcpu: 0), value: 5_000), "utilization_above_max"),
            ]
        }

        /// Random accesses anywhere in the device space: any offset, width, value, direction.
        static func garbage(_ a: DeviceAddresses, seed: UInt64, ops: Int) -> GuestScript {
            var random = SplitMix64(state: seed)
            let widths = AccessWidth.allCases
            var script = GuestScript()
            for _ in 0..<ops {
                let width = widths[Int(random.next(below: UInt64(widths.count)))]
                // Naturally aligned (x86 would split a page-crossing access otherwise).
                let offset = random.next(below: DeviceAddressMap.totalSpan) & ~UInt64(width.rawValue - 1)
                let count = UInt32(1 + random.next(below: 3))
                if random.next(below: 2) == 0 {
                    script.append(.read(address: a.base + offset, width: width, count: count))
                } else {
                    script.append(.write(address: a.base + offset, width: width, value: random.next(), count: count))
                }
            }
            return script
        }

        @Test func aVandalVMNeverBreaksTheDaemonOrItsNeighbour() throws {
            let daemon = try TestDaemon(record: false)
            let victim = try daemon.vm("quad", name: "victim")
            let vandal = try daemon.vm("duo", name: "vandal")
            let v = vandal.addresses

            // 1. Every invalid kind once or twice: counted exactly, by kind.
            let invalid = Self.invalidAccesses(v)
            let run = try vandal.run(vcpu: 0, GuestScript(invalid.map(\.0)))
            #expect(run.exits.total == UInt64(invalid.count), "each of these accesses exits: \(run.exits)")
            var expected: [String: UInt64] = [:]
            for (_, kind) in invalid where !kind.isEmpty { expected[kind, default: 0] += 1 }
            let counted = try #require(try vandal.status())
            #expect(counted.invalidAccesses == expected)
            #expect(counted.counters.invalidAccesses == expected.values.reduce(0, +))
            // Answers to invalid reads are 0; the VMM saw the daemon flag each.
            for (index, (op, kind)) in invalid.enumerated() where !kind.isEmpty {
                if case .read = op { #expect(run.results[index].lastValue == 0, "\(kind)") }
            }
            #expect(vandal.forwarding(vcpu: 0).invalidReplies == UInt64(invalid.filter { if case .read = $0.0 { true } else { false } }.count))

            // 2. Garbage and a kick storm on both vandal vCPUs while the victim works.
            var slotGarbage = GuestScript()
            for word in stride(from: 0, to: SharedPageABI.slotSize, by: 4) {
                slotGarbage.append(.write32(v.slot(vcpu: 1) + UInt64(word), value: 0xFFFF_FFFF))
            }
            slotGarbage.append(.publish(
                slot: v.slot(vcpu: 1), utilization: 50_000, performanceKHz: 0xFFFF_FFFF, flags: .init(rawValue: 0xFFFF_FFFF),
                doorbell: v.doorbell(vcpu: 1), count: 2_000))
            slotGarbage.append(.write32(v.doorbell(vcpu: 1), value: 0, count: 60_000))  // the storm: ioeventfd kicks
            slotGarbage.append(.write32(v.doorbell(vcpu: 0), value: 0, count: 20_000))
            try vandal.vcpus[0].start(script: Self.garbage(v, seed: 0x5EED, ops: 1_000))
            try vandal.vcpus[1].start(script: slotGarbage)

            let victimPrograms = GuestPrograms(addresses: victim.addresses)
            let quad = TestTopology.profile("quad")
            let tables = (0..<4).map { TestTopology.expectedTable(quad, vcpu: $0) }
            var rounds = 0
            let giveUp = ContinuousClock.now + .seconds(30)
            repeat {
                let probe = try DriverProbe.run(on: victim)
                #expect(probe.tableLengths == tables.map { UInt32($0.count) })
                #expect(probe.policies.map(\.tableKHz) == [tables[0], tables[2]])
                #expect(probe.domains == [7, 7, 3, 3])
                let request = tables[2][rounds % tables[2].count]
                let check = try victim.run(vcpu: 2, [
                    victimPrograms.setPerf(vcpu: 2, kHz: request),
                    victimPrograms.read(.freqtblLen, vcpu: 2),
                    victimPrograms.ticks(vcpu: 2, count: 100),
                ])
                #expect(check.results[1].lastValue == UInt64(tables[2].count))
                #expect(check.results[2].lastValue == UInt64(tables[2].last!))
                #expect(check.exits.total == 2, "set_perf and freqtbl_len exit, ticks do not")
                rounds += 1
            } while ContinuousClock.now < giveUp && !vandal.vcpus.allSatisfy(\.hasFinishedRun)
            let fuzzed = try vandal.vcpus[0].wait(timeout: .seconds(60))
            let stormed = try vandal.vcpus[1].wait(timeout: .seconds(60))
            #expect(rounds >= 1)
            #expect(daemon.process.isRunning)
            #expect(fuzzed.exits.total > 0 && vandal.forwarding(vcpu: 0).failures == 0)
            #expect(stormed.results[SharedPageABI.slotSize / 4].doorbellWrites <= 2_000)
            print("vandal: garbage \(fuzzed.duration) (\(fuzzed.exits)), slot garbage and kick storm \(stormed.duration)")

            // 3. The daemon still answers both; the vandal's counts only grew, the victim has none.
            let client = try daemon.client()
            let status = try ConnectedVM.status(of: client)
            let vandalStatus = try #require(status.vms.first { $0.name == "vandal" })
            let victimStatus = try #require(status.vms.first { $0.name == "victim" })
            #expect(vandalStatus.counters.invalidAccesses > counted.counters.invalidAccesses)
            for (kind, count) in expected { #expect((vandalStatus.invalidAccesses[kind] ?? 0) >= count, "\(kind)") }
            #expect(vandalStatus.vcpus[1].kicks >= 1)
            // The garbage publications were consumed and judged field by field.
            #expect((vandalStatus.invalidAccesses["unknown_flags"] ?? 0) >= 1)
            #expect(victimStatus.counters.invalidAccesses == 0)
            #expect(victimStatus.vcpus[2].requests == UInt64(rounds))
            #expect(victimStatus.vcpus[2].lastRequest == "set_perf \(tables[2][(rounds - 1) % tables[2].count]) kHz")
            print("misbehaviour: \(rounds) victim rounds during the storm; vandal invalid accesses \(vandalStatus.invalidAccesses)")

            // 4. The vandal goes away; the victim carries on.
            try vandal.detach()
            #expect(try DriverProbe.run(on: victim).domains == [7, 7, 3, 3])
        }
    }
}

extension EndToEnd {
    /// The daemon going away mid-run breaks neither the VMM nor its guest:
    /// forwarded accesses answer 0 and are counted as failures, memory-backed
    /// paths (mirror, shared page) keep working from the last values.
    @Suite struct DaemonGoneTests {
        @Test func aGuestOutlivesItsDaemon() throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm("duo")
            let programs = GuestPrograms(addresses: vm.addresses)
            let before = try vm.run(vcpu: 0, [programs.read(.curFreq, vcpu: 0)])
            #expect(before.results[0].lastValue == 1_804_000)
            daemon.process.stop()
            #expect(!daemon.process.isRunning)

            let after = try vm.run(vcpu: 0, [
                programs.read(.curFreq, vcpu: 0),  // forwarded: fails, reads 0
                programs.setPerf(vcpu: 0, kHz: 1_000_000),  // posted: fails quietly
                programs.ticks(vcpu: 0, count: 10),  // the mirror still holds the last cur_perf
                programs.publish(vcpu: 0, utilization: 10, flags: [.utilValid]),
            ])
            #expect(after.results[0].lastValue == 0)
            #expect(after.results[2].lastValue == 1_804_000)
            #expect(vm.forwarding(vcpu: 0).failures >= 1)
            #expect(vm.device.firstFailure != nil)
            #expect(throws: VMMError.self) { try vm.status() }
        }
    }
}
