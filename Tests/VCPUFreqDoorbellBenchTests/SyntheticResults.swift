@testable import VCPUFreqDoorbellBench

/// A hand-made run: three placements, every path, numbers chosen so the
/// targets of the first placement come out known (kick cost 0.2 × path 1,
/// suppressed 0.06 ×, kick p99 49 µs, mirror reads without exits, path 5
/// without exits or kicks).
enum SyntheticResults {
    static func request(_ kind: RequestPathKind, cost: Double, samples: [Double]) -> RequestResult {
        RequestResult(
            path: kind, name: kind.name, title: kind.title, costMicroseconds: cost, costRounds: [cost],
            costRatioToPath1: cost / 20, exitsPerRequest: kind.rawValue <= 2 ? 1 : 0,
            kicksPerRequest: kind == .kicked ? 1 : 0, latency: LatencySummary(samples), latencyRatioToPath1: nil,
            latencyOfA: nil, latencyOfB: nil,
            spacedRequestCost: LatencySummary([cost]), abandoned: 0, timedExitsPerRequest: 0, timedKicksPerRequest: 0,
            daemon: nil, accounting: nil, latencyQuantiles: LatencySummary.quantiles(samples))
    }

    static func read(_ kind: ReadPathKind, cost: Double) -> ReadResult {
        ReadResult(
            path: kind, name: kind.name, title: kind.title, costMicroseconds: cost, costRounds: [cost],
            ratioToMMIOInVMM: cost / 15, exitsPerRead: kind == .mirror ? 0 : 1, value: 3_000_000)
    }

    static func placement(_ placement: Placement) -> PlacementResults {
        // 100 samples 1...100 scaled: p99 of 0.49 × (1...100) is 0.49 × 99 = 48.51; use 100 values whose
        // 99th smallest is 49: 98 of 10 µs, then 49 and 60.
        let kicked = Array(repeating: 10.0, count: 98) + [49, 60]
        return PlacementResults(
            placement: placement, vcpuCPUs: "0", daemonCPUs: "1",
            requests: [
                request(.inVMM, cost: 20, samples: [20, 22, 30]),
                request(.forwarded, cost: 25, samples: [60, 70, 90]),
                request(.kicked, cost: 4, samples: kicked),
                request(.suppressed, cost: 1.2, samples: [300, 600, 990]),
                request(.bpfMapPage, cost: 0.02, samples: [100, 2000, 3900]),
            ],
            reads: [read(.inVMM, cost: 15), read(.forwarded, cost: 50), read(.mirror, cost: 0.0004)],
            wakeup: LatencySummary([3, 4, 30]))
    }

    static func make() -> DoorbellResults {
        DoorbellResults(
            date: "2026-01-01T00:00:00Z",
            machine: MachineDescription(
                cpuModel: "Test CPU", onlineCPUs: 2, kernel: "6.18", kvmFlavour: "PVM", isVirtualMachine: true,
                clockSource: "tsc", buildConfiguration: "release", swiftVersion: "6.3+"),
            settings: .init(
                quick: false, costRounds: 7, exitingRequests: 2000, kickedRequests: 5000, suppressedRequests: 200_000,
                mirrorReads: 1_000_000, latencySamples: 100, pollIntervalMicroseconds: 1000, meanGapMicroseconds: 1000,
                applyTimeoutMicroseconds: 200_000, requestAKHz: 3_000_000, requestBKHz: 1_000_000, expectedUtilMinA: 1024,
                expectedUtilMinB: 341),
            calibration: .init(
                tsc: TSCCalibration(ticksPerMicrosecond: 2700, relativeSpread: 0.001), spinNanosecondsPerIteration: 0.3,
                timestampOverheadNanoseconds: 40),
            daemonActuators: "clamp=none latency=slice affinity=off", daemonNotes: [],
            inVMMDevice: .init(requests: 1, uclampFailures: 1, lastUclampErrno: 95, sliceChanges: 1, sliceFailures: 0, reads: 1),
            placements: Placement.allCases.map(placement),
            targets: Findings.targets(Placement.allCases.map(placement)), findings: [])
    }
}
