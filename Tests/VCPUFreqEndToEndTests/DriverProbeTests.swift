import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

extension EndToEnd {
    /// The upstream driver's probe, run by a real guest against the daemon,
    /// reads back exactly the topology's tables and domains — through forwarded
    /// MMIO exits, and through the read-only mirror (where only the
    /// `perftbl_sel` stores exit, synchronously).
    @Suite struct DriverProbeTests {
        static let profiles = ["duo", "quad", "maxonly"]

        @Test(arguments: profiles, [true, false])
        func probeReadsTheTopologysTablesAndDomains(profile name: String, mirror: Bool) throws {
            let daemon = try TestDaemon(record: false)
            let vm = try daemon.vm(name, mirror: mirror)
            let profile = TestTopology.profile(name)
            let probe = try DriverProbe.run(on: vm)

            let tables = (0..<profile.vcpuCount).map { TestTopology.expectedTable(profile, vcpu: $0) }
            let domains = TestTopology.expectedDomains(profile)
            #expect(probe.tableLengths == tables.map { UInt32($0.count) })
            #expect(probe.domains == domains)
            // One policy per distinct domain, led by its lowest CPU, holding
            // exactly the CPUs of that domain and the table of its CPUs.
            var expectedPolicies: [DriverProbe.Policy] = []
            for cpu in 0..<profile.vcpuCount where !expectedPolicies.contains(where: { $0.domain == domains[cpu] }) {
                let members = (0..<profile.vcpuCount).filter { domains[$0] == domains[cpu] }
                expectedPolicies.append(.init(cpu: cpu, cpus: members, domain: domains[cpu], tableKHz: tables[cpu]))
            }
            #expect(probe.policies == expectedPolicies)

            // Exits: every register access exits without the mirror; with it only
            // the perftbl_sel stores do (one per entry of each policy's table), sync.
            let selections = UInt64(expectedPolicies.reduce(0) { $0 + $1.tableKHz.count })
            let loads = UInt64(profile.vcpuCount)  // perftbl_len at probe
                + expectedPolicies.reduce(0) { $0 + UInt64(1 + $1.tableKHz.count + 1 + profile.vcpuCount) }
            if mirror {
                #expect(probe.exits.mmioReads == 0)
                #expect(probe.exits.mmioWrites == selections)
                #expect(probe.forwarding.syncWrites == selections)
                #expect(probe.forwarding.reads == 0)
            } else {
                #expect(probe.exits.mmioReads == loads)
                #expect(probe.exits.mmioWrites == selections)
                #expect(probe.forwarding.reads == loads)
                #expect(probe.forwarding.postedWrites == selections)
                #expect(probe.forwarding.syncWrites == 0)
            }
            #expect(probe.exits.total == probe.exits.mmioReads + probe.exits.mmioWrites)
            #expect(probe.forwarding.failures == 0)

            // The daemon saw no invalid access and no request from a probe.
            let status = try #require(try vm.status())
            #expect(status.counters.invalidAccesses == 0)
            #expect(status.counters.requests == 0)
        }

        /// The probe answers come from the daemon, not from the VMM: a second VM
        /// of another profile on the same daemon reads its own tables.
        @Test func twoVMsOnOneDaemonEachReadTheirOwnProfile() throws {
            let daemon = try TestDaemon(record: false)
            let quad = try daemon.vm("quad")
            let maxOnly = try daemon.vm("maxonly", mirror: false)
            let quadProbe = try DriverProbe.run(on: quad)
            let maxProbe = try DriverProbe.run(on: maxOnly)
            #expect(quadProbe.tableLengths == [5, 5, 6, 6])
            #expect(maxProbe.tableLengths == [1, 1])
            #expect(maxProbe.policies.map(\.tableKHz) == [[3_000_000], [1_804_000]])
            #expect(quadProbe.policies.map(\.cpus) == [[0, 1], [2, 3]])
        }
    }
}
