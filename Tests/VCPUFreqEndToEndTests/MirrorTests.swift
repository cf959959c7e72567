import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

extension EndToEnd {
    /// cur_perf on every tick: from the read-only mirror it costs no exit, and
    /// it reads what a forwarded READ of the same register returns.
    @Suite struct MirrorTests {
        static let ticks: UInt32 = 20_000

        @Test func curPerfTicksFromTheMirrorCauseZeroExitsAndMatchAForwardedRead() throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm("quad")
            let programs = GuestPrograms(addresses: vm.addresses)
            let profile = TestTopology.profile("quad")
            let scripts: [GuestScript] = (0..<vm.vcpuCount).map { [programs.ticks(vcpu: $0, count: Self.ticks)] }
            let before = (0..<vm.vcpuCount).map { vm.exitCounts(vcpu: $0) }
            let runs = try vm.run(scripts).map { try $0.unwrap() }
            for (vcpu, run) in runs.enumerated() {
                #expect(run.exits.total == 0, "vCPU \(vcpu): \(run.exits)")
                #expect(vm.exitCounts(vcpu: vcpu) == before[vcpu])
                // A forwarded READ of the same register, through the VMM's connection.
                let offset = vm.addresses.upstream(.curPerf, vcpu: vcpu) - vm.addresses.base
                let forwarded = try vm.client.read(vcpu: vcpu, offset: offset)
                #expect(forwarded.invalid == 0)
                #expect(run.results[0].lastValue == forwarded.value)
                #expect(run.results[0].checksum == forwarded.value &* UInt64(Self.ticks))
                // A nominal host runs every cluster at its maximum: cur_perf is the table's top.
                let maximum = TestTopology.cluster(profile.clusters[vcpu]).maxFrequencyKHz
                #expect(forwarded.value == UInt64(maximum))
            }
        }

        /// The same loads on a VM without the mirror: one exit and one forwarded
        /// READ each, same values.
        @Test func withoutTheMirrorEveryTickExitsAndReadsTheSameValue() throws {
            let daemon = try TestDaemon(record: false)
            let mirrored = try daemon.vm("duo")
            let forwarded = try daemon.vm("duo", mirror: false)
            let count: UInt32 = 50
            for vcpu in 0..<2 {
                let fromMirror = try mirrored.run(vcpu: vcpu, [GuestPrograms(addresses: mirrored.addresses).ticks(vcpu: vcpu, count: count)])
                let fromDaemon = try forwarded.run(vcpu: vcpu, [GuestPrograms(addresses: forwarded.addresses).ticks(vcpu: vcpu, count: count)])
                #expect(fromMirror.exits.total == 0)
                #expect(fromDaemon.exits.mmioReads == UInt64(count) && fromDaemon.exits.total == UInt64(count))
                #expect(forwarded.forwarding(vcpu: vcpu).reads == UInt64(count))
                #expect(fromMirror.results == fromDaemon.results)
            }
        }

        /// Every readable upstream register, mirror load against forwarded READ,
        /// including perftbl_rd after a (synchronous) perftbl_sel store.
        @Test(arguments: ["duo", "maxonly"])
        func everyMirroredRegisterEqualsTheForwardedRead(profile: String) throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm(profile)
            let programs = GuestPrograms(addresses: vm.addresses)
            for vcpu in 0..<vm.vcpuCount {
                let run = try vm.run(vcpu: vcpu, [
                    .write32(vm.addresses.upstream(.perftblSel, vcpu: vcpu), value: 0),
                    programs.read(.curPerf, vcpu: vcpu), programs.read(.perftblLen, vcpu: vcpu),
                    programs.read(.perftblRd, vcpu: vcpu), programs.read(.perfDomain, vcpu: vcpu),
                    programs.read(.setPerf, vcpu: vcpu), programs.read(.perftblSel, vcpu: vcpu),
                ])
                #expect(run.exits.mmioReads == 0 && run.exits.mmioWrites == 1)
                let registers: [UpstreamABI.Register] = [.curPerf, .perftblLen, .perftblRd, .perfDomain]
                for (index, register) in registers.enumerated() {
                    let offset = vm.addresses.upstream(register, vcpu: vcpu) - vm.addresses.base
                    let answer = try vm.client.read(vcpu: vcpu, offset: offset)
                    #expect(run.results[index + 1].lastValue == answer.value, "vCPU \(vcpu) \(register.name)")
                    #expect(vm.shared?.mirrorValue(vcpu: vcpu, register: register) == UInt32(answer.value))
                }
                // perftbl_rd at selection 0 is the table's first entry (ascending).
                #expect(run.results[3].lastValue == UInt64(TestTopology.expectedTable(TestTopology.profile(profile), vcpu: vcpu)[0]))
                // Write-only registers read as 0 from the mirror (no exit, no invalid access counted).
                #expect(run.results[5].lastValue == 0 && run.results[6].lastValue == 0)
            }
            #expect(try #require(try vm.status()).counters.invalidAccesses == 0)
        }
    }
}
