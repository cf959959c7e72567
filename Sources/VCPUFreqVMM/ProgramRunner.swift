import Glibc
import VCPUFreqCore
import VCPUFreqKVM

/// Runs a `GuestProgram` on a `ConnectedVM` and collects a `ProgramReport`:
/// the probe, then each phase on every vCPU at once (one script per vCPU,
/// one deadline), timing each run on the host.
public struct ProgramRunner {
    public let vm: ConnectedVM
    public var timeout: Duration

    public init(vm: ConnectedVM, timeout: Duration = .seconds(60)) {
        self.vm = vm
        self.timeout = timeout
    }

    public func run(_ program: GuestProgram) throws(VMMError) -> ProgramReport {
        let probe = try DriverProbe.run(on: vm, timeout: timeout)
        let baseline = try emptyRunDurations()
        var phases: [ProgramReport.Phase] = []
        for phase in program.phases {
            phases.append(run(phase, probe: probe, baseline: baseline))
        }
        settle()
        let status = try vm.status()
        let outcomes = (0..<vm.vcpuCount).map { vcpu in
            ProgramReport.Outcome(
                vcpu: vcpu, threadID: Int32(vm.vcpus[vcpu].threadID), exits: vm.exitCounts(vcpu: vcpu),
                forwarding: vm.forwarding(vcpu: vcpu), hostArea: vm.shared?.hostArea(vcpu: vcpu),
                status: status?.vcpus.first { $0.index == vcpu })
        }
        return ProgramReport(
            program: program, attachment: vm.attachment, vmName: vm.options.vmName, vcpuCount: vm.vcpuCount,
            sharedPage: vm.shared != nil, mirror: vm.shared?.mirror != nil,
            doorbells: !(vm.shared?.doorbells.isEmpty ?? true), probe: probe, phases: phases, outcomes: outcomes,
            status: status, forwardingFailure: vm.device.firstFailure.map { "\($0)" })
    }

    /// Per vCPU, the median of three empty runs: what entering the guest and
    /// the final DONE exit cost, subtracted from every timed run.
    private func emptyRunDurations() throws(VMMError) -> [Duration] {
        var durations: [Duration] = []
        for vcpu in 0..<vm.vcpuCount {
            var samples: [Duration] = []
            for _ in 0..<3 {
                do { samples.append(try vm.run(vcpu: vcpu, [], timeout: timeout).duration) } catch { throw .kvm(error) }
            }
            durations.append(samples.sorted()[1])
        }
        return durations
    }

    /// Waits until the daemon consumed every vCPU's last shared-page request
    /// (its `ack_sequence` caught up), at most a second, so the host areas
    /// and STATUS show the final hints; then one more millisecond for a
    /// rate-limited change to land.
    private func settle() {
        guard let shared = vm.shared else { return }
        let deadline = ContinuousClock.now + .seconds(1)
        while ContinuousClock.now < deadline {
            let pending = (0..<vm.vcpuCount).contains { vcpu in
                let sequence = shared.guestSequence(vcpu: vcpu)
                return sequence != 0 && sequence & 1 == 0 && shared.acknowledgedSequence(vcpu: vcpu) != sequence
            }
            if !pending { break }
            usleep(500)
        }
        usleep(2_000)
    }

    // MARK: Phases

    private struct Step {
        var script: GuestScript
        var asked: String
        /// Operations per run of the script.
        var operations: UInt64
        /// Runs of the script, with `pause` between them (the guest idles).
        var runs = 1
        var pause: Duration = .zero
        /// Report the doorbell writes of the script's publish ops.
        var publishes = false
    }

    private func run(_ phase: ProgramPhase, probe: DriverProbe, baseline: [Duration]) -> ProgramReport.Phase {
        let steps = (0..<vm.vcpuCount).map { step(phase, vcpu: $0, probe: probe) }
        let before = (0..<vm.vcpuCount).map { (vm.exitCounts(vcpu: $0), vm.forwarding(vcpu: $0)) }
        var vcpus = (0..<vm.vcpuCount).map { vcpu in
            ProgramReport.VCPUPhase(
                vcpu: vcpu, asked: steps[vcpu].asked, operations: steps[vcpu].operations * UInt64(steps[vcpu].runs),
                exits: ExitCounts(), forwarding: ForwardingCounts(), duration: .zero,
                overhead: baseline[vcpu] * steps[vcpu].runs, doorbellWrites: steps[vcpu].publishes ? 0 : nil)
        }
        let runs = steps.map(\.runs).max() ?? 1
        for index in 0..<runs {
            if index > 0, let pause = steps.first?.pause, pause > .zero { Self.sleep(pause) }
            for (vcpu, result) in vm.run(steps.map(\.script), timeout: timeout).enumerated() {
                switch result {
                case .success(let run):
                    vcpus[vcpu].duration += run.duration
                    if steps[vcpu].publishes {
                        let writes = zip(steps[vcpu].script.ops, run.results).reduce(UInt64(0)) {
                            $0 + ($1.0.isPublish ? $1.1.doorbellWrites : 0)
                        }
                        vcpus[vcpu].doorbellWrites = (vcpus[vcpu].doorbellWrites ?? 0) + writes
                    }
                case .failure(let error):
                    if vcpus[vcpu].failure == nil { vcpus[vcpu].failure = "\(error)" }
                }
            }
        }
        for vcpu in 0..<vm.vcpuCount {
            vcpus[vcpu].exits = vm.exitCounts(vcpu: vcpu) - before[vcpu].0
            vcpus[vcpu].forwarding = vm.forwarding(vcpu: vcpu) - before[vcpu].1
        }
        return .init(name: phase.name, title: phase.title, vcpus: vcpus)
    }

    static func sleep(_ duration: Duration) {
        let microseconds = duration.components.seconds * 1_000_000 + duration.components.attoseconds / 1_000_000_000_000
        usleep(UInt32(clamping: microseconds))
    }

    /// The script vCPU `vcpu` runs in `phase`, with what it asks in words.
    private func step(_ phase: ProgramPhase, vcpu: Int, probe: DriverProbe) -> Step {
        let programs = GuestPrograms(addresses: vm.addresses)
        let table = probe.table(ofCPU: vcpu)
        switch phase {
        case .setPerf:
            // A level two thirds up the table (max-only mode: two thirds of the maximum).
            let kHz = table.count > 1 ? table[table.count * 2 / 3] : (table.first ?? 3) / 3 * 2
            let count = ProgramPhase.exitingOperations
            return Step(script: [programs.setPerf(vcpu: vcpu, kHz: kHz, count: count)],
                        asked: "set_perf \(kHz) kHz ×\(count)", operations: UInt64(count))
        case .ticks:
            let mirrored = vm.shared?.mirror != nil
            let count = mirrored ? ProgramPhase.tickCount : ProgramPhase.exitingOperations
            return Step(script: [programs.ticks(vcpu: vcpu, count: count)],
                        asked: "cur_perf ×\(count) (\(mirrored ? "mirror" : "forwarded READ"))", operations: UInt64(count))
        case .forwardedRead:
            let count = ProgramPhase.exitingOperations
            return Step(script: [programs.read(.curFreq, vcpu: vcpu, count: count)],
                        asked: "cur_freq ×\(count)", operations: UInt64(count))
        case .utilHint:
            let utilization = UInt32(128 + 256 * (vcpu % 4))
            let count = ProgramPhase.exitingOperations
            return Step(script: [programs.utilHint(vcpu: vcpu, utilization: utilization, count: count)],
                        asked: "util_hint \(utilization) ×\(count)", operations: UInt64(count))
        case .spacedPublish:
            guard vm.shared != nil else { return Step(script: [], asked: "no shared page mapped", operations: 0) }
            let (utilization, flags) = publishRequest(vcpu: vcpu)
            // One run per request, the guest idle in between: each run times one publish.
            return Step(script: [programs.publish(vcpu: vcpu, utilization: utilization, flags: flags)],
                        asked: "publish util \(utilization)\(describe(flags)) ×\(ProgramPhase.spacedPublishes), 2 ms apart",
                        operations: 1, runs: ProgramPhase.spacedPublishes, pause: ProgramPhase.spacing, publishes: true)
        case .burstPublish:
            guard vm.shared != nil else { return Step(script: [], asked: "no shared page mapped", operations: 0) }
            let (utilization, flags) = publishRequest(vcpu: vcpu)
            return Step(script: [programs.publish(vcpu: vcpu, utilization: utilization, flags: flags, count: ProgramPhase.burst)],
                        asked: "publish util \(utilization)/\(utilization - 1)\(describe(flags)) ×\(ProgramPhase.burst)",
                        operations: UInt64(ProgramPhase.burst), publishes: true)
        case .invalidAccesses:
            let a = vm.addresses
            let script: GuestScript = [
                .write(address: a.upstream(.setPerf, vcpu: vcpu), width: .word16, value: 1, count: 1),
                .write32(a.upstreamWindow(vcpu: vcpu) + 0x06, value: 1),
                .write32(a.upstream(.curPerf, vcpu: vcpu), value: 1),
                .read32(a.utilHint(.utilHint, vcpu: vcpu)),
                .read32(a.utilHint(.utilHint, vcpu: vcpu) + 0x100),
                .read32(a.upstreamWindow(vcpu: vm.vcpuCount + vcpu)),
                .write32(a.upstream(.setPerf, vcpu: vcpu), value: 0),
                .write32(a.upstream(.setPerf, vcpu: vcpu), value: 0xFFFF_FFFF),
                .write32(a.utilHint(.utilHint, vcpu: vcpu), value: 5_000),
            ]
            return Step(script: script, asked: "9 invalid accesses", operations: 9)
        case .kickStorm:
            guard vm.shared?.doorbells.isEmpty == false else {
                return Step(script: [], asked: "no doorbells mapped", operations: 0)
            }
            return Step(script: [programs.ring(vcpu: vcpu, count: ProgramPhase.storm)],
                        asked: "doorbell ×\(ProgramPhase.storm)", operations: UInt64(ProgramPhase.storm))
        }
    }

    /// vCPU 0 asks for latency-sensitive treatment, the others for utilization only.
    private func publishRequest(vcpu: Int) -> (UInt32, SharedPageABI.GuestFlags) {
        let utilization = UInt32(min(1024, 300 + 150 * vcpu))
        return vcpu == 0 ? (utilization, [.utilValid, .latencySensitive]) : (utilization, [.utilValid])
    }

    private func describe(_ flags: SharedPageABI.GuestFlags) -> String {
        flags.contains(.latencySensitive) ? " +latency" : ""
    }
}

extension GuestOp {
    var isPublish: Bool {
        if case .publish = self { return true }
        return false
    }
}
