import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

extension DaemonBenchmark {
    /// Kick → hint applied for one vCPU with the generator (the guest's
    /// side) and the daemon's loop placed on different CPUs, on the same CPU,
    /// and on the same CPU with a generator that never yields (a busy vCPU
    /// sharing the daemon's CPU); then with the daemon alone with a busy
    /// thread on its CPU: as is, with a short EEVDF slice, and SCHED_FIFO.
    /// Paths 1 and 2, utilization only.
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

        progress.note("placement study: attaching 1 VM x 1 vCPU (kick_mode always)")
        let vms = try attach(VMShape(vms: 1, vcpusPerVM: 1), profile: BenchTopology.kickProfile(vcpus: 1), tag: "placement")
        defer { for vm in vms { vm.detach() } }
        let generator = LoadGenerator(vms: vms, sliceMicroseconds: UInt32(options.latencySliceMicroseconds))
        var rows: [DaemonBenchReport.PlacementRow] = []
        var busy: CPUHogs?
        defer {
            busy?.stop()
            try? setDaemonSlice(microseconds: 0)
        }
        for placement in BenchPlacement.allCases {
            guard !placement.needsTwoCPUs || second != nil else { continue }
            let a = CPUList([first])
            let b = CPUList([second ?? first])
            switch placement {
            case .free: try place(generator: all, daemon: all)
            case .crossCPU: try place(generator: a, daemon: b)
            case .sameCPU, .sameCPUBusy: try place(generator: a, daemon: a)
            case .busyCPU:
                try place(generator: a, daemon: b)
                do { busy = try CPUHogs(cpus: b.ids) } catch { throw BenchError("\(error)") }
            case .busyCPUShortSlice:
                try setDaemonSlice(microseconds: BenchPlacement.daemonSliceMicroseconds)
                daemonSliceObserved = ProcFS().eevdfSliceNanoseconds(ofThread: daemon.pid)
            case .busyCPURealtime:
                do {
                    try ThreadScheduling.setAttributes(
                        SchedAttr(size: UInt32(SchedAttr.sizeWithoutUtilClamp), policy: .fifo, priority: 1), of: daemon.pid)
                } catch {
                    progress.note("placement \(placement.rawValue) skipped: SCHED_FIFO refused (\(error))")
                    continue
                }
            }
            for path in [BenchPath.registerForwarding, .sharedPageKick] {
                let yield = !placement.generatorSpins
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
                progress.note(
                    "placement \(placement.rawValue), \(path.title): p50 \(Self.format(summary.p50Microseconds)) µs, "
                        + "p99 \(Self.format(summary.p99Microseconds)) µs")
            }
        }
        return rows
    }

    /// Gives the daemon's event-loop thread an EEVDF slice (0 = the default
    /// again), as the daemon's own latency actuator does for vCPU threads.
    /// Back to SCHED_NORMAL with the default slice.
    func setDaemonSlice(microseconds: UInt32) throws {
        let attributes = microseconds == 0
            ? SchedAttr(size: UInt32(SchedAttr.sizeWithoutUtilClamp), policy: .normal)
            : LatencyActuator.sliceAttributes(microseconds: microseconds, original: nil)
        do { try ThreadScheduling.setAttributes(attributes, of: daemon.pid) } catch {
            throw BenchError("cannot set the daemon's slice to \(microseconds) µs: \(error)")
        }
    }
}
