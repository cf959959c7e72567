import Foundation
import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

extension EndToEnd {
    /// A request from vCPU k ends as a hint on vCPU k's own host thread: in the
    /// daemon's action record (`serve --record`), in the shared page host area,
    /// and — for the latency part, which this host can actuate — on the live
    /// thread itself (/proc/<tid>/sched `se.slice`).
    @Suite struct HintTests {
        /// set_perf values (table entries) per vCPU of "duo": little, big.
        static let requestsKHz: [UInt32] = [1_401_000, 2_000_000]

        @Test func setPerfFromEachVCPUYieldsTheExpectedHintOnItsOwnThread() throws {
            let daemon = try TestDaemon()
            let vm = try daemon.vm("duo")
            let programs = GuestPrograms(addresses: vm.addresses)
            let profile = TestTopology.profile("duo")
            let tids = vm.vcpus.map { Int32($0.threadID) }
            // The record shows a clamp only where the daemon has a clamp actuator
            // (uclamp, cgroup or the BPF map); a host with none (like the CI
            // machine, no uclamp) records latency and affinity changes only.
            let actuators = try #require(try vm.status()).actuators
            let recordsClamps = !actuators.contains("clamp=none")

            for vcpu in 0..<2 {
                let before = tids.map { daemon.applies(tid: $0).count }
                let run = try vm.run(vcpu: vcpu, [programs.setPerf(vcpu: vcpu, kHz: Self.requestsKHz[vcpu])])
                #expect(run.exits.mmioWrites == 1)
                #expect(vm.forwarding(vcpu: vcpu).postedWrites == 1)

                let cluster = TestTopology.cluster(profile.clusters[vcpu])
                let utilization = expectedUtilization(kHz: Self.requestsKHz[vcpu], cluster: cluster)
                // vCPU 0 models little but runs on the big CPU: util_max holds it
                // to the request; vCPU 1 runs on what it models: unclamped.
                let utilMax = vcpu == 0 ? utilization : 1024
                // The daemon applied it (status and the shared page host area)...
                #expect(eventually { vm.shared?.hostArea(vcpu: vcpu).map { Int($0.utilMin) == utilization } ?? false })
                let area = try #require(vm.shared?.hostArea(vcpu: vcpu))
                #expect(Int(area.utilMin) == utilization && Int(area.utilMax) == utilMax)
                let status = try #require(try vm.status())
                #expect(status.vcpus[vcpu].utilMin.map(Int.init) == utilization)
                #expect(status.vcpus[vcpu].utilMax.map(Int.init) == utilMax)
                // ... on vCPU k's own thread, and only there.
                if recordsClamps {
                    let applied = eventually {
                        daemon.applies(tid: tids[vcpu]).dropFirst(before[vcpu]).contains {
                            $0["vcpu"] as? Int == vcpu && $0["util_min"] as? Int == utilization && $0["util_max"] as? Int == utilMax
                        }
                    }
                    #expect(applied, "vCPU \(vcpu): no apply of util \(utilization)/\(utilMax) on TID \(tids[vcpu]) in \(daemon.records)")
                } else {
                    print("\(actuators): no clamp actuator, so the record cannot show set_perf's util (the latency test checks it)")
                }
                let other = 1 - vcpu
                #expect(daemon.applies(tid: tids[other]).count == before[other])
                if vcpu == 0 { #expect(status.vcpus[other].lastRequest == nil) }
                #expect(status.vcpus[vcpu].lastRequest == "set_perf \(Self.requestsKHz[vcpu]) kHz")
                #expect(status.vcpus[vcpu].tid == tids[vcpu])
            }
        }

        /// The same through the util-hint window: util is on the scheduler's
        /// scale already (no headroom factor).
        @Test func utilHintYieldsThatUtilizationOnTheWritersThread() throws {
            let daemon = try TestDaemon()
            let vm = try daemon.vm("duo")
            let programs = GuestPrograms(addresses: vm.addresses)
            let tid = Int32(vm.vcpus[1].threadID)
            _ = try vm.run(vcpu: 1, [programs.utilHint(vcpu: 1, utilization: 700)])
            #expect(eventually { vm.shared?.hostArea(vcpu: 1).map { $0.utilMin == 700 && $0.utilMax == 1024 } ?? false })
            if try #require(try vm.status()).actuators.contains("clamp=none") == false {
                #expect(eventually { daemon.applies(tid: tid).contains { $0["util_min"] as? Int == 700 && $0["util_max"] as? Int == 1024 } })
            }
            // applied_util reads back what the daemon applied (a forwarded READ).
            let run = try vm.run(vcpu: 1, [programs.read(.appliedUtil, vcpu: 1)])
            #expect(run.results[0].lastValue == 700)
            #expect(run.exits.mmioReads == 1)
        }

        /// A latency-sensitive shared-page request, kicked through the doorbell,
        /// gives vCPU k's live thread the profile's EEVDF slice (300 µs); the other
        /// thread keeps its own; DETACH puts it back.
        @Test(arguments: [0, 1])
        func latencySensitivePublishSetsTheEEVDFSliceOnTheLiveThread(vcpu: Int) throws {
            let daemon = try TestDaemon()
            let client = try daemon.client()
            let capabilities = try ConnectedVM.status(of: client).daemon.capabilities
            let vm = try daemon.vm("duo")
            let programs = GuestPrograms(addresses: vm.addresses)
            let tids = vm.vcpus.map { Int32($0.threadID) }
            let other = 1 - vcpu
            let originalSlice = eevdfSlice(tid: tids[other])

            let run = try vm.run(vcpu: vcpu, [
                programs.publish(vcpu: vcpu, utilization: 300, flags: [.latencySensitive, .utilValid]),
                programs.awaitAcknowledgement(vcpu: vcpu, sequence: 2, maxSpins: acknowledgementSpins),
            ], timeout: acknowledgementTimeout)
            #expect(run.results[0].doorbellWrites == 1, "kick_mode always: the guest must ring")
            #expect(!run.results[1].timedOut)
            #expect(run.exits.total == 0, "the doorbell is an ioeventfd and the slot is RAM: no exit")

            // The latency facet changed, so the record has the whole hint, util included.
            let utilMax = vcpu == 0 ? 300 : 1024  // vCPU 0 is held to its request
            let sliceApplied = eventually {
                daemon.applies(tid: tids[vcpu]).contains {
                    $0["latency"] as? String == "slice=300us" && $0["util_min"] as? Int == 300 && $0["util_max"] as? Int == utilMax
                }
            }
            #expect(sliceApplied, "\(daemon.records)")
            #expect(!daemon.applies(tid: tids[other]).contains { $0["latency"] as? String != "none" })
            #expect(vm.shared?.hostArea(vcpu: vcpu)?.appliedSliceMicroseconds == 300)

            if capabilities["eevdf_slice"]?.hasPrefix("available") == true, let originalSlice {
                #expect(eventually { eevdfSlice(tid: tids[vcpu]) == 300_000 })
                #expect(eevdfSlice(tid: tids[other]) == originalSlice)
                #expect(try vm.detach() == 2)
                #expect(eevdfSlice(tid: tids[vcpu]) == originalSlice)
            } else {
                print("EEVDF slice not actuated here (\(capabilities["eevdf_slice"] ?? "unknown")): checked in the record only")
            }
        }
    }
}
