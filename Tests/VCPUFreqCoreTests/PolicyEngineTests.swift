import Testing
@testable import VCPUFreqCore

private let ms: UInt64 = 1_000_000

/// The static rules of the engine: attach, domains, cap, util_max, affinity,
/// latency, reporting. Timing rules are in PolicyTimingTests.
@Suite struct PolicyEngineTests {
    // Phone: vCPUs 0-3 little (capacity 160, max 1 803 000 kHz), 4-5 mid
    // (498, 2 253 000 kHz), 6-7 big (1024, 2 802 000 kHz); one domain each.

    @Test(arguments: PolicyFixtures.allTopologies(), [1024, 300, 0])
    func attachReportsEveryVCPUOnceWithItsInitialHint(topology: Topology, utilCap: Int) throws {
        let model = try PolicyFixtures.model(topology, utilCap: utilCap)
        var engine = PolicyEngine(vm: model)
        let expected = model.vcpus.map { vcpu in
            PolicyChange(
                vcpu: vcpu.index,
                // headroom none: the full speed util of a vCPU is its capacity.
                hint: HostHint(
                    utilMin: 0, utilMax: UInt16(vcpu.isSlowerThanHost ? min(vcpu.capacity, utilCap) : utilCap), latency: .none,
                    affinity: vcpu.hostCPUs))
        }
        #expect(engine.drained() == expected)
        #expect(engine.drained() == [])
        #expect(engine.nextDeadline == nil)
    }

    @Test func withoutPinningAffinityIsLeftAlone() throws {
        var engine = PolicyEngine(vm: try PolicyFixtures.model(SampleTopologies.phone(), pin: false))
        let changes = engine.drained()
        #expect(changes.count == 8)
        #expect(changes.allSatisfy { $0.hint.affinity == nil })
    }

    @Test func pinnedAffinityIsTheModeledClusterOrThePinSet() throws {
        let engine = try PolicyFixtures.engine(SampleTopologies.phone())
        #expect(engine.appliedHint(vcpu: 0).affinity == CPUList(0...3))
        #expect(engine.appliedHint(vcpu: 5).affinity == CPUList(4...5))
        #expect(engine.appliedHint(vcpu: 7).affinity == CPUList(6...7))
        let floating = try PolicyFixtures.engine(PolicyFixtures.floatingPhone())
        #expect(floating.appliedHint(vcpu: 0).affinity == CPUList(0...7))
    }

    @Test func aDomainFollowsItsHighestDemand() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone())
        engine.perf(0, 1_803_000, at: 1 * ms)  // little max → 160
        #expect(engine.utilMins == [160, 160, 160, 160, 0, 0, 0, 0])
        #expect(engine.drained().map(\.vcpu) == [0, 1, 2, 3])
        engine.perf(2, 930_000, at: 2 * ms)  // 160 × 930/1803 = 82.5 → 83, below vCPU 0's
        #expect(engine.utilMins == [160, 160, 160, 160, 0, 0, 0, 0])
        #expect(engine.drained() == [])
        #expect(engine.state(vcpu: 2).demand == 83)
        engine.perf(0, 300_000, at: 3 * ms)  // vCPU 0 drops to 27: vCPU 2's 83 now leads
        #expect(engine.utilMins == [83, 83, 83, 83, 0, 0, 0, 0])
        #expect(engine.domainDemand(vcpu: 1) == 83)
        engine.util(6, 700, at: 4 * ms)
        #expect(engine.utilMins == [83, 83, 83, 83, 0, 0, 700, 700])
        #expect(engine.drained().map(\.vcpu) == [0, 1, 2, 3, 6, 7])
    }

    @Test func laptopBigVCPUsHaveADomainEach() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.laptop())
        engine.perf(4, 2_400_000, at: 1 * ms)
        engine.perf(1, 1_000_000, at: 2 * ms)  // 382 × 1/2 = 191
        #expect(engine.utilMins == [191, 191, 191, 191, 1024, 0])
    }

    @Test(arguments: [
        // cap, request util on big vCPU 6, expected util_min (= min(request, cap))
        (1024, 1024, 1024), (1024, 700, 700), (512, 1024, 512), (512, 511, 511), (512, 512, 512),
        (300, 700, 300), (1, 700, 1), (0, 700, 0), (0, 0, 0),
    ])
    func utilMinAndUtilMaxNeverExceedTheCap(cap: Int, request: UInt32, expected: UInt16) throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone(), utilCap: cap)
        engine.util(6, request, at: 1 * ms)
        #expect(engine.appliedHint(vcpu: 6).utilMin == expected)
        #expect(engine.appliedHint(vcpu: 6).utilMax == UInt16(cap))
        #expect(engine.state(vcpu: 6).isCapped == (Int(request) > cap))
        #expect(engine.state(vcpu: 6).requestedUtilization == UInt16(request))
    }

    @Test func aVCPUSlowerThanItsHostCPUsIsHeldToTheModeledSpeed() throws {
        var engine = try PolicyFixtures.engine(PolicyFixtures.floatingPhone())
        // Before any request: held to their modeled full speed (little 160, mid 498), not slowed to 0.
        #expect(engine.utilMaxes == [160, 160, 160, 160, 498, 498, 1024, 1024])
        engine.perf(0, 1_401_000, at: 1 * ms)  // 160 × 1401/1803 = 124.3 → 124
        engine.perf(4, 2_253_000, at: 1 * ms)  // mid max → 498
        engine.util(6, 700, at: 1 * ms)
        #expect(engine.utilMins == [124, 124, 124, 124, 498, 498, 700, 700])
        #expect(engine.utilMaxes == [124, 124, 124, 124, 498, 498, 1024, 1024])
        engine.perf(0, 300_000, at: 2 * ms)  // → 27: util_max follows down
        #expect(engine.utilMaxes == [27, 27, 27, 27, 498, 498, 1024, 1024])
    }

    @Test func theCapAppliesToSlowerVCPUsToo() throws {
        var engine = try PolicyFixtures.engine(PolicyFixtures.floatingPhone(), utilCap: 100)
        engine.perf(4, 2_253_000, at: 1 * ms)
        #expect(engine.appliedHint(vcpu: 4) == HostHint(utilMin: 100, utilMax: 100, affinity: CPUList(0...7)))
    }

    /// (kind, slice µs, nice, cap) → the hint a latency-sensitive vCPU gets.
    @Test(arguments: [
        (LatencyHintKind.slice, 300, -5, 1024, LatencyHint.slice(microseconds: 300)),
        (.slice, 100, -5, 1024, .slice(microseconds: 100)),
        (.nice, 300, -5, 1024, .nice(-5)),
        (.nice, 300, -20, 1024, .nice(-20)),
        (.none, 300, -5, 1024, .none),
        (.slice, 300, -5, 0, .none),  // a VM capped to 0 gets no latency hint
        (.nice, 300, -5, 0, .none),
    ] as [(LatencyHintKind, Int, Int, Int, LatencyHint)])
    func latencySensitiveVCPUsGetTheOperatorsHint(kind: LatencyHintKind, slice: Int, nice: Int, cap: Int, expected: LatencyHint) throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone(), utilCap: cap) {
            $0.latencyHint = kind
            $0.latencySliceMicroseconds = slice
            $0.latencyNice = nice
        }
        engine.util(1, 50, at: 1 * ms, latency: true)
        #expect(engine.appliedHint(vcpu: 1).latency == expected)
        // Latency is per vCPU, not per domain.
        #expect(engine.appliedHint(vcpu: 0).latency == .none)
        // A register request cannot say: the state stays.
        engine.perf(1, 300_000, at: 2 * ms)
        #expect(engine.appliedHint(vcpu: 1).latency == expected)
        #expect(engine.state(vcpu: 1).latencySensitive)
        engine.util(1, 50, at: 3 * ms, latency: false)
        #expect(engine.appliedHint(vcpu: 1).latency == .none)
    }

    /// A hand-built model can carry settings the topology check would refuse;
    /// the hint still stays within the kernel's bounds and never grows
    /// stronger than asked.
    @Test(arguments: [
        (LatencyHintKind.slice, 20, 0, LatencyHint.slice(microseconds: 100)),
        (.slice, 500_000, 0, .slice(microseconds: 100_000)),
        (.nice, 300, -40, .nice(-20)),
        (.nice, 300, 50, .nice(19)),
    ] as [(LatencyHintKind, Int, Int, LatencyHint)])
    func uncheckedLatencySettingsAreClampedToKernelBounds(kind: LatencyHintKind, slice: Int, nice: Int, expected: LatencyHint) throws {
        var model = try PolicyFixtures.model(SampleTopologies.phone(), PolicyFixtures.plain)
        model.policy.latencyHint = kind
        model.policy.latencySliceMicroseconds = slice
        model.policy.latencyNice = nice
        var engine = PolicyEngine(vm: model)
        engine.util(3, 0, at: 1 * ms, latency: true)
        #expect(engine.appliedHint(vcpu: 3).latency == expected)
    }

    @Test func latencyChangesApplyDespiteHysteresis() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone()) { $0.hysteresis = 100 }
        engine.util(6, 500, at: 1 * ms)
        _ = engine.drained()
        engine.util(6, 510, at: 2 * ms, latency: true)
        #expect(engine.drained() == [PolicyChange(vcpu: 6, hint: HostHint(utilMin: 500, utilMax: 1024, latency: .slice(microseconds: 300), affinity: CPUList(6...7)))])
    }

    @Test func aFlagsOnlyRequestKeepsTheRequestedUtilization() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone())
        engine.util(6, 500, at: 1 * ms)
        engine.submit(GuestRequest(vcpu: 6, latencySensitive: true, source: .sharedPage), now: 2 * ms)
        #expect(engine.appliedHint(vcpu: 6).utilMin == 500)
        #expect(engine.appliedHint(vcpu: 6).latency == .slice(microseconds: 300))
        #expect(engine.state(vcpu: 6).lastRequest == GuestRequest(vcpu: 6, latencySensitive: true, source: .sharedPage))
        #expect(engine.state(vcpu: 6).lastRequestAt == 2 * ms)
    }

    @Test(arguments: [8, 9, -1, Int.max, Int.min])
    func requestsForVCPUsTheVMDoesNotHaveAreDropped(vcpu: Int) throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone())
        engine.submit(GuestRequest(vcpu: vcpu, utilization: 1024, boost: true, source: .sharedPage), now: 1 * ms)
        #expect(engine.rejectedRequests == 1)
        #expect(engine.drained() == [])
        #expect(engine.appliedHint(vcpu: vcpu) == .neutral)
        #expect(engine.state(vcpu: vcpu) == VCPUPolicyState())
        #expect(engine.domainDemand(vcpu: vcpu) == 0)
    }

    @Test func aChangeUndoneBeforeTheDrainIsNotReported() throws {
        var engine = try PolicyFixtures.engine(SampleTopologies.phone())
        engine.util(6, 500, at: 1 * ms)
        engine.util(6, 0, at: 2 * ms)
        #expect(engine.hasChanges)
        #expect(engine.drained() == [])
        #expect(!engine.hasChanges)
    }

    /// A wide VM: one domain per vCPU, so any set of vCPUs can change. Both
    /// the short (sorted in place) and the long (flag scan) drain paths must
    /// report in ascending order, each vCPU once.
    @Test(arguments: [[5, 3, 9, 1, 0], Array((0..<40).reversed()), [39, 0, 20, 20, 7, 33, 1, 38, 2, 37, 3, 36, 4, 35, 5, 34, 6, 33]])
    func drainReportsInAscendingOrder(order: [Int]) throws {
        var topology = SampleTopologies.server()
        topology.vms[0] = VMProfile(name: "wide", vcpuCount: 40, clusters: Array(repeating: "all", count: 40), domains: Array(0..<40))
        var engine = try PolicyFixtures.engine(topology)
        for (step, vcpu) in order.enumerated() { engine.util(vcpu, UInt32(100 + step), at: UInt64(step + 1) * ms) }
        let changes = engine.drained()
        #expect(changes.map(\.vcpu) == Array(Set(order)).sorted())
        for change in changes { #expect(change.hint == engine.appliedHint(vcpu: change.vcpu)) }
    }
}
