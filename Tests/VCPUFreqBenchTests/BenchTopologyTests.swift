import Testing
import VCPUFreqConfig
import VCPUFreqCore

@testable import VCPUFreqBench

/// The generated topology is valid, and under it the real policy turns each
/// request the generator sends into exactly the hint the generator waits
/// for (util_min = the utilization asked, util_max 1024, the slice when
/// latency-sensitive), independently per vCPU.
@Suite struct BenchTopologyTests {
    static let topology = BenchTopology(
        hostCPUs: "0-1", vcpuCounts: [4, 1, 4], pollIntervalMicroseconds: 100, latencySliceMicroseconds: 300)

    static func decoded() throws -> Topology {
        let (topology, diagnostics) = TopologyFile.decode(Self.topology.text)
        let errors = diagnostics.filter { $0.severity == .error }
        #expect(errors.isEmpty, "\(errors)")
        return try #require(topology)
    }

    @Test func profilesPerVMSize() throws {
        let topology = try Self.decoded()
        #expect(Set(topology.vms.map(\.name)) == ["kick-1", "poll-1", "kick-4", "poll-4"])
        for profile in topology.vms {
            let expectedCount = profile.name.hasSuffix("-4") ? 4 : 1
            #expect(profile.vcpuCount == expectedCount)
            #expect(profile.policy.kickMode == (profile.name.hasPrefix("kick") ? .always : .never))
            #expect(profile.policy.pollIntervalMicroseconds == 100)
            #expect(profile.policy.hysteresis == 0)
            #expect(profile.policy.minimumIntervalMicroseconds == 0)
            #expect(profile.policy.latencyHint == .slice)
            #expect(profile.policy.latencySliceMicroseconds == 300)
            #expect(!profile.pin)
            #expect(profile.utilCap == 1024)
        }
        #expect(topology.host.clusters.count == 1)
        #expect(topology.host.clusters[0].capacity == 1024)
    }

    @Test func everyRequestIsAppliedAtOnceAndAlone() throws {
        let model = try Self.decoded().model(forVM: "kick-4")
        #expect(model.domains.count == 4, "one performance domain per vCPU")
        var policy = PolicyEngine(vm: model)
        policy.drainChanges { _, _ in }  // attach: every vCPU reported once
        var now: UInt64 = 1_000_000_000
        // What the generator sends on vCPU 2, and what it then waits for.
        let requests: [(utilization: UInt32, latency: Bool, utilMin: UInt16, latencyHint: LatencyHint)] = [
            (LoadGenerator.highUtilization, false, 896, .none),
            (LoadGenerator.lowUtilization, false, 128, .none),
            (LoadGenerator.highUtilization, true, 896, .slice(microseconds: 300)),
            (LoadGenerator.lowUtilization, false, 128, .none),
        ]
        for request in requests {
            now += 1_000  // 1 µs apart: no rate limit may hold any of them
            policy.submit(
                GuestRequest(vcpu: 2, utilization: request.utilization, latencySensitive: request.latency, source: .sharedPage),
                now: now)
            var reported: [(Int, HostHint)] = []
            policy.drainChanges { vcpu, hint in reported.append((vcpu, hint)) }
            #expect(reported.count == 1)
            #expect(reported.first?.0 == 2)
            #expect(reported.first?.1.utilMin == request.utilMin)
            #expect(reported.first?.1.utilMax == 1024)
            #expect(reported.first?.1.latency == request.latencyHint)
        }
    }

    @Test func hostCPUsAreTheCluster() {
        let text = BenchTopology(hostCPUs: "0-7", vcpuCounts: [2], pollIntervalMicroseconds: 50, latencySliceMicroseconds: 100).text
        #expect(text.contains("cpus = \"0-7\""))
        #expect(text.contains("poll_interval_us = 50"))
    }
}
