import Foundation
import Glibc
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// Everything the benchmark measures on, built once and shared by every
/// placement: the daemon (`vcpufreq serve` with `BenchTopology`), one
/// one-vCPU VM per path, and the request and read paths on them.
///
/// | VM | daemon | mapped | used by |
/// |---|---|---|---|
/// | `inVMM` | none: `InProcessDevice` | nothing | path 1, in-VMM reads |
/// | `forwarded` | profile "kicked" | shared page only | path 2 (its host area is watched), forwarded reads |
/// | `kicked` | profile "kicked" | page, mirror, doorbell | path 3, mirror reads |
/// | `polled` | profile "polled" | page, mirror, doorbell | path 4 |
final class Rig {
    let directory: String
    let daemon: DaemonProcess
    let inProcessDevice: InProcessDevice
    let inVMM: VirtualMachine
    let forwarded: ConnectedVM
    let kicked: ConnectedVM
    let polled: ConnectedVM
    let requestPaths: [RequestPath]
    let readPaths: [ReadPath]
    private var tornDown = false

    init(system: KVMSystem, executable: String, configuration: BenchConfiguration, cpuCount: Int) throws(BenchError) {
        var template = Array("/tmp/vcpufreq-bench.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw .output("cannot create a temporary directory (errno \(errno))") }
        directory = String(cString: made)
        let topology = directory + "/bench.toml"
        do {
            try BenchTopology.text(cpuCount: cpuCount, pollIntervalMicroseconds: configuration.pollIntervalMicroseconds)
                .write(toFile: topology, atomically: true, encoding: .utf8)
            daemon = try DaemonProcess(
                executable: executable, topology: topology, arguments: ["--log-level", "warning", "--no-pin"])
        } catch let error as VMMError {
            Self.removeDirectory(directory)
            throw .vmm(error)
        } catch {
            Self.removeDirectory(directory)
            throw .output("cannot write \(topology): \(error)")
        }
        let maximum = BenchTopology.frequenciesKHz.last ?? 1
        inProcessDevice = InProcessDevice(
            base: DeviceAddressMap.defaultBase, vcpuCount: 1, capacity: BenchTopology.capacity, maximumKHz: maximum,
            currentPerformanceKHz: maximum)
        do {
            inVMM = try VirtualMachine(system: system, vcpuCount: 1, handler: inProcessDevice)
        } catch {
            throw .kvm(operation: "creating the VM of path 1", error)
        }
        let socketPath = daemon.socketPath
        func connect(_ name: String, profile: String, mirror: Bool) throws(BenchError) -> ConnectedVM {
            let client: VCPUFreqClient
            do {
                client = try VCPUFreqClient(socketPath: socketPath, clientName: "vcpufreq bench doorbell")
            } catch {
                throw .vmm(.daemonUnreachable(socketPath: socketPath, error))
            }
            do {
                return try ConnectedVM(
                    system: system, client: client,
                    options: .init(vmName: "bench-\(name)", profile: profile, vcpuCount: 1, mirror: mirror))
            } catch {
                throw .vmm(error)
            }
        }
        forwarded = try connect("forwarded", profile: BenchTopology.kickedProfile, mirror: false)
        kicked = try connect("kicked", profile: BenchTopology.kickedProfile, mirror: true)
        polled = try connect("polled", profile: BenchTopology.polledProfile, mirror: true)

        let a = BenchTopology.requestA, b = BenchTopology.requestB
        let inVMMAddresses = DeviceAddresses(base: DeviceAddressMap.defaultBase, vcpuCount: 1)
        func scratch(_ vm: VirtualMachine) -> (UInt64, UInt64) {
            (vm.layout.scratch.lowerBound, vm.layout.scratch.upperBound - vm.layout.scratch.lowerBound)
        }
        var paths: [RequestPath] = []
        let (inVMMBlock, inVMMBytes) = scratch(inVMM)
        paths.append(RequestPath(
            kind: .inVMM, vcpu: inVMM.vcpus[0], ram: inVMM.ram, block: inVMMBlock, scratchBytes: inVMMBytes,
            template: RequestLoopParameters(kind: .store, target: inVMMAddresses.upstream(.setPerf, vcpu: 0), values: (a, b))))
        for (kind, vm) in [(RequestPathKind.forwarded, forwarded), (.kicked, kicked), (.suppressed, polled)] {
            let (block, bytes) = scratch(vm.vm)
            paths.append(RequestPath(
                kind: kind, vcpu: vm.vcpus[0], ram: vm.vm.ram, block: block, scratchBytes: bytes,
                template: Self.template(kind, addresses: vm.addresses, values: (a, b))))
        }
        requestPaths = paths
        readPaths = [
            ReadPath(kind: .inVMM, vcpu: inVMM.vcpus[0], address: inVMMAddresses.upstream(.curPerf, vcpu: 0)),
            ReadPath(kind: .forwarded, vcpu: forwarded.vcpus[0], address: forwarded.addresses.upstream(.curPerf, vcpu: 0)),
            ReadPath(kind: .mirror, vcpu: kicked.vcpus[0], address: kicked.addresses.upstream(.curPerf, vcpu: 0)),
        ]
    }

    /// Paths 2-4: the request and where the guest sees it applied — util_min,
    /// the low half of `applied_clamp` in the slot's host area, which the
    /// daemon publishes after applying the hint. Shared-page requests are
    /// latency-sensitive on A and not on B, so that the daemon also changes
    /// the thread's EEVDF slice (a sched_setattr) on every one, as path 1 does.
    static func template(
        _ kind: RequestPathKind, addresses: DeviceAddresses, values: (UInt32, UInt32)
    ) -> RequestLoopParameters {
        var block: RequestLoopParameters
        if kind == .forwarded {
            block = RequestLoopParameters(kind: .store, target: addresses.upstream(.setPerf, vcpu: 0), values: values)
        } else {
            block = RequestLoopParameters(kind: .publish, target: addresses.slot(vcpu: 0), values: values)
            block.doorbell = addresses.doorbell(vcpu: 0)
            block.field = SharedPageABI.Slot.performanceKHz
            block.flags = (
                SharedPageABI.GuestFlags([.perfValid, .latencySensitive]).rawValue,
                SharedPageABI.GuestFlags.perfValid.rawValue
            )
        }
        block.watch = addresses.slotField(SharedPageABI.Slot.appliedClamp, vcpu: 0)
        block.mask = 0xFFFF
        block.expected = (BenchTopology.utilMin(forKHz: values.0), BenchTopology.utilMin(forKHz: values.1))
        return block
    }

    /// The primer of a daemon path (`RequestPath.prime`); nil for path 1.
    func primer(for kind: RequestPathKind) -> RequestLoopParameters? {
        guard kind != .inVMM, let path = requestPaths.first(where: { $0.kind == kind }) else { return nil }
        var block = path.template
        block.values = (BenchTopology.primer, BenchTopology.primer)
        block.flags = (SharedPageABI.GuestFlags.perfValid.rawValue, SharedPageABI.GuestFlags.perfValid.rawValue)
        let expected = BenchTopology.utilMin(forKHz: BenchTopology.primer)
        block.expected = (expected, expected)
        return block
    }

    func connectedVM(for kind: RequestPathKind) -> ConnectedVM? {
        switch kind {
        case .inVMM: return nil
        case .forwarded: return forwarded
        case .kicked: return kicked
        case .suppressed: return polled
        }
    }

    /// Every vCPU thread of the benchmark (what a placement moves).
    var vcpuThreads: [Int32] {
        ([inVMM.vcpus[0]] + [forwarded, kicked, polled].map { $0.vcpus[0] }).map { Int32($0.threadID) }
    }

    // MARK: Calibration

    struct Calibration {
        var spin: SpinCalibration
        var tsc: TSCCalibration
        var timestampOverheadNanoseconds: Double
    }

    /// Spin and TSC calibration on path 1's vCPU; the time stamps' own cost
    /// on path 4 (timed minus untimed suppressed publishes, where a request
    /// is nanoseconds and the stamps show).
    func calibrate() throws(BenchError) -> Calibration {
        let vcpu = inVMM.vcpus[0]
        let spin: SpinCalibration
        let tsc: TSCCalibration
        do {
            spin = try vcpu.calibrateSpin()
            tsc = try TSCCalibration.measure(on: vcpu, spin: spin)
        } catch {
            throw .kvm(operation: "calibrating the spin loop and the TSC", error)
        }
        var overhead = 0.0
        if let suppressed = requestPaths.first(where: { $0.kind == .suppressed }) {
            let count = UInt32(min(20_000, suppressed.sampleCapacity))
            let untimed = try suppressed.measureCost(requests: count, rounds: 3, timeout: .seconds(60))
            let timed = try suppressed.measureCost(requests: count, rounds: 3, timeout: .seconds(60), recordingSamples: true)
            overhead = max(0, timed.microsecondsPerRequest - untimed.microsecondsPerRequest) * 1000
        }
        return Calibration(spin: spin, tsc: tsc, timestampOverheadNanoseconds: overhead)
    }

    // MARK: Teardown

    /// Unpins every thread, restores path 1's slice, detaches the VMs and
    /// stops the daemon. Idempotent.
    func tearDown(cpuCount: Int) {
        guard !tornDown else { return }
        tornDown = true
        try? Placement.unpinned.apply(cpuCount: cpuCount, vcpuThreads: vcpuThreads, daemonPID: nil)
        InProcessDevice.restoreDefaultSlice(of: Int32(inVMM.vcpus[0].threadID))
        for vm in [forwarded, kicked, polled] { _ = try? vm.detach() }
        daemon.stop()
        Self.removeDirectory(directory)
    }

    deinit { if !tornDown { daemon.stop(); Self.removeDirectory(directory) } }

    static func removeDirectory(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
