import Foundation
import Glibc
import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol
import VCPUFreqVMM

/// Everything a guest run measures on, built once: the daemon (`vcpufreq
/// serve` with `WorkloadTopology`), one VM per configuration (the sched_ext
/// one is built per run, with a daemon of its own that loads the scheduler
/// only while it runs), and the calibration.
///
/// | configuration | VM's MMIO handler | daemon profile | mapped |
/// |---|---|---|---|
/// | baseline | none (no device) | — | nothing |
/// | crosvm-style | `InProcessDevice` | — | nothing |
/// | vcpufreq-mmio | `DaemonDevice` | register | nothing (every access exits) |
/// | vcpufreq-shared-page | `DaemonDevice` | shared-page | page, mirror, doorbells |
/// | vcpufreq-sched-ext | `DaemonDevice` | shared-page, own daemon with `--scheduler sched-ext` | page, mirror, doorbells |
/// | vcpufreq-bpf-map | `DaemonDevice` | bpf-map (`kick_mode = "scheduler"`), built per run | the page as a BPF map, mirror, doorbells |
///
/// The last two are built for each of their runs and torn down after it:
/// the sched_ext scheduler must not schedule the others' runs, and a VM
/// with kicks off makes the daemon poll every `poll_interval_us` for as
/// long as it is attached, which would bill the other configurations.
final class WorkloadRig {
    let system: KVMSystem
    let settings: WorkloadSettings
    let executable: String
    let vcpus: Int
    let regions: GuestRegions
    let directory: String
    let topologyPath: String
    let daemon: DaemonProcess?
    private(set) var targets: [WorkloadConfiguration: GuestTarget] = [:]
    private var tornDown = false

    struct Calibration {
        var spin: SpinCalibration
        var tsc: TSCCalibration
        var memoryIterationsPerMicrosecond: Double
    }

    init(system: KVMSystem, settings: WorkloadSettings, executable: String, cpuCount: Int) throws(WorkloadBenchError) {
        self.system = system
        self.settings = settings
        self.executable = executable
        vcpus = settings.vcpuCount(cpuCount: cpuCount)
        // Room for the busiest program: at most one job per 5 ms of nominal time, and a margin.
        regions = GuestRegions(
            vcpus: vcpus, jobCapacity: Int(settings.secondsPerTest * 250) + 64, bufferBytes: settings.bufferBytes)
        guard regions.ramSize < WorkloadTopology.baseAddress else {
            throw .usage("--vcpus \(vcpus) with \(settings.bufferBytes >> 20) MiB buffers does not fit below the device base")
        }
        var template = Array("/tmp/vcpufreq-workload.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw .output("cannot create a temporary directory (errno \(errno))") }
        directory = String(cString: made)
        topologyPath = directory + "/workload.toml"
        do {
            try WorkloadTopology.text(cpuCount: cpuCount, vcpus: vcpus)
                .write(toFile: topologyPath, atomically: true, encoding: .utf8)
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw .output("cannot write \(topologyPath): \(error)")
        }
        let daemonNeeded = settings.configurations.contains { $0.usesDaemon && $0 != .vcpufreqSchedExt }
        if daemonNeeded {
            do {
                daemon = try DaemonProcess(
                    executable: executable, topology: topologyPath,
                    arguments: ["--log-level", "warning", "--no-pin"] + settings.daemonArguments)
            } catch {
                try? FileManager.default.removeItem(atPath: directory)
                throw .from(error)
            }
        } else {
            daemon = nil
        }
        do {
            for configuration in settings.configurations where !configuration.isPerRun {
                targets[configuration] = try makeTarget(configuration, daemon: daemon)
            }
        } catch {
            tearDown()
            throw error
        }
    }

    /// The VM of `configuration`, attached to `daemon` where it is served by one.
    func makeTarget(_ configuration: WorkloadConfiguration, daemon: DaemonProcess?) throws(WorkloadBenchError) -> GuestTarget {
        func plain(handler: any MMIOHandler) throws(WorkloadBenchError) -> VirtualMachine {
            do {
                return try VirtualMachine(system: system, vcpuCount: vcpus, ramSize: regions.ramSize, handler: handler)
            } catch {
                throw .from(error, while: "creating the \(configuration.name) VM")
            }
        }
        switch configuration {
        case .baseline:
            return GuestTarget(
                configuration: configuration, vm: try plain(handler: NullMMIOHandler()), connected: nil, inProcess: nil,
                daemon: nil, layout: regions)
        case .crosvmStyle:
            let maximum = WorkloadTopology.tableKHz.last ?? 1
            let device = InProcessDevice(
                base: WorkloadTopology.baseAddress, vcpuCount: vcpus, capacity: WorkloadTopology.capacity,
                maximumKHz: maximum, currentPerformanceKHz: maximum)
            return GuestTarget(
                configuration: configuration, vm: try plain(handler: device), connected: nil, inProcess: device,
                daemon: nil, layout: regions)
        case .vcpufreqMMIO, .vcpufreqSharedPage, .vcpufreqSchedExt, .vcpufreqBPFMap:
            guard let daemon else { throw .vmm("\(configuration.name) needs the benchmark's daemon") }
            let bpfMap = configuration == .vcpufreqBPFMap
            let client: VCPUFreqClient
            do {
                client = try VCPUFreqClient(
                    socketPath: daemon.socketPath, clientName: "vcpufreq bench workload",
                    features: SharedPageABIFeatures.all | (bpfMap ? ProtocolFeature.bpfMapPage : 0))
            } catch {
                throw .from(.daemonUnreachable(socketPath: daemon.socketPath, error))
            }
            let shared = configuration != .vcpufreqMMIO
            let profile = bpfMap
                ? WorkloadTopology.bpfMapProfile : shared ? WorkloadTopology.sharedPageProfile : WorkloadTopology.registerProfile
            let connected: ConnectedVM
            do {
                connected = try ConnectedVM(
                    system: system, client: client,
                    options: .init(
                        vmName: "workload-\(configuration.name)",
                        profile: profile,
                        vcpuCount: vcpus, sharedPage: shared, mirror: shared, doorbells: shared, ramSize: regions.ramSize))
            } catch {
                throw .from(error)
            }
            if bpfMap, connected.shared?.pageKind != .bpfMap {
                let note = (try? connected.status()?.sharedPageNote) ?? nil
                _ = try? connected.detach()
                throw .bpfMapPageRefused(note ?? "the daemon gave a memfd page and no reason")
            }
            return GuestTarget(
                configuration: configuration, vm: connected.vm, connected: connected, inProcess: nil, daemon: daemon,
                layout: regions)
        }
    }

    /// Spin, TSC and memory-loop calibration on the baseline VM's vCPU 0
    /// (before any contention starts), then every VM's memory loop over its
    /// buffers once, so first-touch faults stay out of the measurements.
    ///
    /// The TSC rate comes from `TSCCalibration` (a ratio of two clocks that
    /// both keep running through a preemption). The speeds of the two loops
    /// come from the guest's own records of WORKLOAD jobs — the loops the
    /// tests run, with their tick checks — as the fastest of several runs:
    /// a run the host preempted only looks slower, so the minimum is the
    /// unpreempted speed even on a busy machine.
    func calibrate() throws(WorkloadBenchError) -> Calibration {
        guard let reference = targets[.baseline] ?? targets.values.first else { throw .usage("no configuration to run") }
        let vcpu = reference.vm.vcpus[0]
        let rough: SpinCalibration
        let tsc: TSCCalibration
        do {
            rough = try vcpu.calibrateSpin(iterations: 10_000_000)
            tsc = try TSCCalibration.measure(on: vcpu, spin: rough)
        } catch {
            throw .from(error, while: "calibrating the TSC")
        }
        for target in targets.values.sorted(by: { $0.configuration.name < $1.configuration.name }) {
            try touch(target, tsc: tsc)
        }
        /// The fewest ticks one job took over `runs` runs.
        func fastest(_ job: WorkloadParameters.Job, runs: Int) throws(WorkloadBenchError) -> UInt64 {
            var best = UInt64.max
            for _ in 0..<runs {
                let script = try write(quietBlock(reference, vcpu: 0, tsc: tsc), jobs: [job], into: reference, vcpu: 0)
                do {
                    _ = try vcpu.run(script: script, timeout: .seconds(120))
                } catch {
                    throw .from(error, while: "calibrating the guest's loops")
                }
                guard let record = WorkloadParameters.records(in: reference.vm.ram, at: regions.block(0), count: 1).first,
                    record.endTSC > record.startTSC
                else { throw .measurement("a calibration run left no record") }
                best = min(best, record.endTSC - record.startTSC)
            }
            return best
        }
        // Short runs (about 0.5 ms), many of them: on a machine with a dozen
        // runnable threads per CPU some still run unpreempted.
        let spinIterations = max(rough.iterations(for: .microseconds(500)), 10_000)
        let spinTicks = try fastest(WorkloadParameters.Job(releaseTicks: 0, computeIterations: spinIterations), runs: 31)
        let spin = SpinCalibration(nanosecondsPerIteration: tsc.microseconds(ticks: spinTicks) * 1000 / Double(spinIterations))
        let probe: UInt64 = 20_000
        let roughRate = Double(probe) / tsc.microseconds(ticks: try fastest(
            WorkloadParameters.Job(releaseTicks: 0, computeIterations: 0, memoryIterations: probe), runs: 5))
        let memoryIterations = max(UInt64(roughRate * 500), 1_000)
        let memoryTicks = try fastest(
            WorkloadParameters.Job(releaseTicks: 0, computeIterations: 0, memoryIterations: memoryIterations), runs: 31)
        return Calibration(
            spin: spin, tsc: tsc,
            memoryIterationsPerMicrosecond: Double(memoryIterations) / tsc.microseconds(ticks: memoryTicks))
    }

    /// Runs the memory loop over every buffer of `target` twice, sending
    /// nothing, so that first-touch faults stay out of its measured runs.
    func touch(_ target: GuestTarget, tsc: TSCCalibration) throws(WorkloadBenchError) {
        let lines = max(regions.bufferBytes / 64, 1)
        let touch = [WorkloadParameters.Job(releaseTicks: 0, computeIterations: 0, memoryIterations: 2 * lines)]
        let scripts = try (0..<vcpus).map { index throws(WorkloadBenchError) -> GuestScript in
            try write(quietBlock(target, vcpu: index, tsc: tsc), jobs: touch, into: target, vcpu: index)
        }
        for result in target.vm.run(scripts, timeout: .seconds(120)) {
            if case .failure(let error) = result { throw .from(error, while: "touching the \(target.configuration.name) VM's buffers") }
        }
    }

    /// Configuration 6 for one run: a VM attached to the benchmark's daemon
    /// with the bpf-map profile, its page a BPF map (else
    /// `.bpfMapPageRefused` with the daemon's note), its buffers touched.
    /// The caller tears it down after the run.
    func openBPFMap(tsc: TSCCalibration) throws(WorkloadBenchError) -> GuestTarget {
        let target = try makeTarget(.vcpufreqBPFMap, daemon: daemon)
        do {
            try touch(target, tsc: tsc)
        } catch {
            target.tearDown()
            throw error
        }
        return target
    }

    /// A block that sends nothing (calibration and warm-up).
    private func quietBlock(_ target: GuestTarget, vcpu: Int, tsc: TSCCalibration) -> WorkloadParameters {
        var block = target.block(vcpu: vcpu, settings: settings, tsc: tsc)
        block.kind = .none
        block.currentPerformanceAddress = 0
        return block
    }

    /// Writes `block` and `jobs` for vCPU `vcpu` of `target`; returns the script that runs them.
    @discardableResult
    func write(
        _ block: WorkloadParameters, jobs: [WorkloadParameters.Job], into target: GuestTarget, vcpu: Int
    ) throws(WorkloadBenchError) -> GuestScript {
        guard jobs.count <= regions.jobCapacity else {
            throw .measurement("a program of \(jobs.count) jobs on one vCPU exceeds the \(regions.jobCapacity) its block holds")
        }
        do {
            try block.write(jobs: jobs, to: target.vm.ram, at: regions.block(vcpu))
        } catch {
            throw .from(error, while: "writing vCPU \(vcpu)'s workload")
        }
        return [.workload(parameters: regions.block(vcpu), count: UInt32(jobs.count))]
    }

    /// Configuration 5 for one run: a daemon of its own that loads the
    /// sched_ext scheduler, and a VM attached to it. The caller closes it
    /// after the run (the scheduler is unloaded with the daemon, so it never
    /// schedules another configuration's runs).
    func openSchedExt() throws(WorkloadBenchError) -> (DaemonProcess, GuestTarget, report: String?) {
        let daemon: DaemonProcess
        do {
            daemon = try DaemonProcess(
                executable: executable, topology: topologyPath,
                arguments: ["--log-level", "warning", "--no-pin"] + settings.daemonArguments + SchedExt.serveArguments)
        } catch {
            throw .from(error)
        }
        let target = try makeTarget(.vcpufreqSchedExt, daemon: daemon)
        let json = try? target.connected?.client.statusJSON(allVMs: false)
        return (daemon, target, json.flatMap { SchedExt.daemonReport(statusJSON: $0) })
    }

    /// Why the daemon offers no BPF-map pages (STATUS
    /// `daemon.capabilities.bpf_map_page`); nil when it does.
    func bpfMapPageUnavailable() -> String? {
        guard let daemon else { return "not run: no daemon" }
        let capability: String?
        do {
            let client = try VCPUFreqClient(socketPath: daemon.socketPath, clientName: "vcpufreq bench workload")
            capability = try ConnectedVM.status(of: client, allVMs: false).daemon.capabilities["bpf_map_page"]
        } catch {
            return "not run: the daemon's STATUS failed: \(error)"
        }
        if capability?.hasPrefix("available") == true { return nil }
        return "not on this host (the daemon offers no BPF-map pages: \(capability ?? "it does not say why"))"
    }

    /// The daemon's actuators in words (STATUS).
    func daemonActuators() -> String? {
        guard let connected = targets.values.compactMap(\.connected).first,
            let status = try? ConnectedVM.status(of: connected.client, allVMs: false)
        else { return nil }
        return status.daemon.actuators
    }

    /// Detaches every VM, restores slices and stops the daemon. Idempotent.
    func tearDown() {
        guard !tornDown else { return }
        tornDown = true
        for target in targets.values { target.tearDown() }
        targets = [:]
        _ = daemon?.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    deinit { tearDown() }
}
