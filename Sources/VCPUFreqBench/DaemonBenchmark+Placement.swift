import VCPUFreqCore
import VCPUFreqLinux

extension DaemonBenchmark {
    /// Kick → hint applied for one vCPU with the generator (the guest's
    /// side) and the daemon's loop placed on different CPUs, on the same CPU,
    /// and on the same CPU with a generator that never yields (a busy vCPU
    /// sharing the daemon's CPU). Paths 1 and 2, utilization only.
    func runPlacementStudy(cpus machine: MachineDescription) throws -> [DaemonBenchReport.PlacementRow] {
        let all: CPUList
        do { all = try CPUList(parsing: machine.onlineCPUList) } catch {
            throw BenchError("cannot read the online CPUs: \(error)")
        }
        guard let first = all.ids.first else { return [] }
        let second = all.ids.dropFirst().first
        let generatorTID = ThreadScheduling.currentThreadID()
        func place(generator: CPUList, daemon daemonCPUs: CPUList) throws {
            do { try ThreadScheduling.setAffinity(generator, of: generatorTID) } catch {
                throw BenchError("cannot set the generator's affinity to \(generator): \(error)")
            }
            try daemon.setAffinity(daemonCPUs)
        }
        defer { try? place(generator: all, daemon: all) }

        progress("placement study: attaching 1 VM x 1 vCPU (kick_mode always)")
        let vms = try attach(VMShape(vms: 1, vcpusPerVM: 1), profile: BenchTopology.kickProfile(vcpus: 1), tag: "placement")
        defer { for vm in vms { vm.detach() } }
        let generator = LoadGenerator(vms: vms, sliceMicroseconds: UInt32(options.latencySliceMicroseconds))
        var rows: [DaemonBenchReport.PlacementRow] = []
        for placement in BenchPlacement.allCases {
            switch placement {
            case .free: try place(generator: all, daemon: all)
            case .crossCPU:
                guard let second else { continue }
                try place(generator: CPUList([first]), daemon: CPUList([second]))
            case .sameCPU, .sameCPUBusy: try place(generator: CPUList([first]), daemon: CPUList([first]))
            }
            for path in [BenchPath.registerForwarding, .sharedPageKick] {
                let yield = placement != .sameCPUBusy
                _ = try generator.measureLatency(
                    path: path, variant: .clamp, samples: options.warmupRequests, gapMicroseconds: 0, yieldWhileWaiting: yield)
                let before = daemon.usage()
                let samples = max(options.latencySamples / 2, 1)
                let latency = try generator.measureLatency(
                    path: path, variant: .clamp, samples: samples, gapMicroseconds: options.latencyGapMicroseconds,
                    yieldWhileWaiting: yield)
                let usage = daemon.usage().flatMap { after in before.map { after.since($0) } }
                guard let summary = latency.summary else { continue }
                rows.append(DaemonBenchReport.PlacementRow(
                    placement: placement, path: path, latency: summary,
                    daemonCPUMicrosecondsPerRequest: usage.map { Double($0.cpuNanoseconds) / 1000 / Double(samples) }))
                progress(
                    "placement \(placement.rawValue), \(path.title): p50 \(Self.format(summary.p50Microseconds)) µs, "
                        + "p99 \(Self.format(summary.p99Microseconds)) µs")
            }
        }
        return rows
    }
}
