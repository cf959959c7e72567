import Foundation
import Testing
import VCPUFreqDoorbellBench

/// Skipped, with this reason, where /dev/kvm is absent.
let kvmAvailable = access("/dev/kvm", F_OK) == 0
let requiresKVM = Testing.ConditionTrait.enabled(if: kvmAvailable, "no /dev/kvm on this machine: the benchmark needs KVM")

/// The `vcpufreq` whose `serve` the benchmark's daemon runs: the one built
/// beside this test bundle, else `.build/debug/vcpufreq`; `VCPUFREQ_EXECUTABLE` overrides.
func vcpufreqExecutable(filePath: String = #filePath) -> String {
    if let path = ProcessInfo.processInfo.environment["VCPUFREQ_EXECUTABLE"] { return path }
    let bundle = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    let sibling = bundle.appendingPathComponent("vcpufreq").path
    if access(sibling, X_OK) == 0 { return sibling }
    return URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent(".build/debug/vcpufreq").path
}

/// One quick run against a real daemon: the structure of the results and
/// that every number is there and positive. No timing is asserted — the
/// machine is shared and the numbers are the benchmark's to report.
@Suite(requiresKVM) struct SmokeTests {
    @Test func aQuickRunMeasuresEveryPathInEveryPlacementAndWritesItsFiles() throws {
        var configuration = BenchConfiguration.quick
        configuration.latencySamples = 40
        configuration.samplesPerRun = 20
        configuration.wakeupSamples = 50
        let results = try DoorbellBench(configuration: configuration, daemonExecutable: vcpufreqExecutable()).run()

        let cpus = results.machine.onlineCPUs
        let expectedPlacements = Placement.allCases.filter { $0.cpus(cpuCount: cpus) != nil }
        #expect(results.placements.map(\.placement) == expectedPlacements)
        #expect(results.calibration.tsc.ticksPerMicrosecond > 0)
        #expect(results.settings.quick)
        for placement in results.placements {
            #expect(placement.requests.map(\.path) == RequestPathKind.allCases)
            #expect(placement.reads.map(\.path) == ReadPathKind.allCases)
            #expect((placement.wakeup?.count ?? 0) == 50)
            for request in placement.requests {
                #expect(request.costMicroseconds > 0, "\(request.name) cost")
                #expect(request.costRounds.count == configuration.costRounds)
                let latency = try #require(request.latency, "\(request.name) has latencies")
                #expect(latency.count + request.abandoned == 40)
                #expect(latency.min > 0 && latency.p50 <= latency.p99 && latency.p99 <= latency.max)
                #expect(request.latencyQuantiles.count == LatencySummary.quantileCount)
                // Requests A and B alternate: half of the timed requests each.
                #expect((request.latencyOfA?.count ?? 0) + (request.latencyOfB?.count ?? 0) == latency.count)
                #expect(abs((request.latencyOfA?.count ?? 0) - (request.latencyOfB?.count ?? 0)) <= request.abandoned)
                #expect(abs((request.latencyQuantiles.last ?? 0) - latency.max) <= 0.005)  // kept to 0.01 µs
            }
            // What the paths are: exits for the MMIO paths, none for the shared page.
            #expect(placement.request(.inVMM)?.exitsPerRequest == 1)
            #expect(placement.request(.forwarded)?.exitsPerRequest == 1)
            #expect(placement.request(.kicked)?.exitsPerRequest == 0)
            #expect(placement.request(.kicked)?.kicksPerRequest == 1)
            #expect(placement.request(.suppressed)?.exitsPerRequest == 0)
            #expect(placement.request(.suppressed)?.kicksPerRequest == 0)
            #expect(placement.request(.bpfMapPage)?.exitsPerRequest == 0)
            #expect(placement.request(.bpfMapPage)?.kicksPerRequest == 0)
            #expect(placement.request(.bpfMapPage)?.timedExitsPerRequest == 0)
            #expect(placement.request(.inVMM)?.costRatioToPath1 == 1)
            // The daemon consumed every timed request of the daemon paths (and a primer).
            for kind in [RequestPathKind.forwarded, .kicked, .suppressed] {
                let daemon = try #require(placement.request(kind)?.daemon)
                #expect(daemon.requestsPerRequest >= 1, "\(kind.name)")
            }
            // A kicked request wakes the daemon; one a BPF program reads does not: over
            // path 5's 40 timed requests its loop woke only for its once-a-second poll.
            let kickedWakeups = try #require(placement.request(.kicked)?.daemon?.wakeupsPerRequest)
            let pageWakeups = try #require(placement.request(.bpfMapPage)?.daemon?.wakeupsPerRequest)
            #expect(kickedWakeups >= 0.9, "path 3 woke the daemon \(kickedWakeups) times per request")
            #expect(pageWakeups * 40 <= 3, "path 5 woke the daemon \(pageWakeups) times per request")
            #expect(placement.read(.inVMM)?.exitsPerRead == 1)
            #expect(placement.read(.forwarded)?.exitsPerRead == 1)
            #expect(placement.read(.mirror)?.exitsPerRead == 0)
            // Every way of reading cur_perf reads the same value: the nominal maximum.
            #expect(Set(placement.reads.map(\.value)) == [3_000_000])
        }
        #expect(results.inVMMDevice.requests > 0 && results.inVMMDevice.reads > 0)
        #expect(results.targets.count == 5 * results.placements.count)

        let directory = NSTemporaryDirectory() + "doorbell-smoke-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let written = try ResultsWriter.write(results, to: directory)
        #expect(written.map { URL(fileURLWithPath: $0).lastPathComponent } == ["doorbell.md", "doorbell.json", "doorbell.svg"])
        let reread = try ResultsWriter.read(directory + "/doorbell.json")
        #expect(reread.placements.map(\.placement) == results.placements.map(\.placement))
        let markdown = try String(contentsOfFile: directory + "/doorbell.md", encoding: .utf8)
        #expect(markdown.contains("| placement | # | path |"))
        let svg = try String(contentsOfFile: directory + "/doorbell.svg", encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains("<polyline"))
    }
}
