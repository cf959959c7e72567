import Foundation
import Glibc
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol
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
/// | `polled` | profile "polled" | page, mirror, doorbell | path 4, attached only while measured |
/// | `bpfpage` | profile "scheduler" | the page as a BPF map, mirror, doorbell | path 5, attached only while measured |
///
/// The polled VM is attached only while path 4 is measured: a VM whose
/// kicks are suppressed makes the daemon wake up every poll interval for
/// as long as it is attached, and those wake-ups would land in the other
/// paths' numbers. Path 5's VM is handled the same way (its daemon polls
/// once a second, and its vCPU thread's events make the BPF programs read
/// its slot).
final class Rig {
    let directory: String
    let daemon: DaemonProcess
    let inProcessDevice: InProcessDevice
    let inVMM: VirtualMachine
    let forwarded: ConnectedVM
    let kicked: ConnectedVM
    let system: KVMSystem
    /// Paths 1-3; path 4 comes from `attachSuppressed()`.
    let requestPaths: [RequestPath]
    /// Path 3′: path 3's VM and slot, requests without the latency flag.
    let kickedWithoutSyscall: RequestPath
    let readPaths: [ReadPath]
    /// Why path 5 cannot run (the daemon offers no BPF-map pages: no BPF
    /// programs, `--no-bpf`); nil when it can.
    let bpfMapPageUnavailable: String?
    private var tornDown = false
    /// The eventfds behind path 1's VM's idle doorbells (`measureIdleKicks`).
    private var idleDoorbells: [EventFD] = []

    init(system: KVMSystem, executable: String, configuration: BenchConfiguration, cpuCount: Int) throws(BenchError) {
        var template = Array("/tmp/vcpufreq-bench.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw .output("cannot create a temporary directory (errno \(errno))") }
        directory = String(cString: made)
        let topology = directory + "/bench.toml"
        do {
            try BenchTopology.text(cpuCount: cpuCount, pollIntervalMicroseconds: configuration.pollIntervalMicroseconds)
                .write(toFile: topology, atomically: true, encoding: .utf8)
            daemon = try DaemonProcess(
                executable: executable, topology: topology,
                arguments: ["--log-level", "warning", "--no-pin"] + configuration.daemonArguments)
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
        self.system = system
        forwarded = try Self.connect(system, daemon, "forwarded", profile: BenchTopology.kickedProfile, mirror: false)
        kicked = try Self.connect(system, daemon, "kicked", profile: BenchTopology.kickedProfile, mirror: true)

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
        for (kind, vm) in [(RequestPathKind.forwarded, forwarded), (.kicked, kicked)] {
            let (block, bytes) = scratch(vm.vm)
            paths.append(RequestPath(
                kind: kind, vcpu: vm.vcpus[0], ram: vm.vm.ram, block: block, scratchBytes: bytes,
                template: Self.template(kind, addresses: vm.addresses, values: (a, b))))
        }
        requestPaths = paths
        var variant = paths[paths.count - 1]
        variant.isVariant = true
        var quiet = variant.template
        quiet.flags = (SharedPageABI.GuestFlags.perfValid.rawValue, SharedPageABI.GuestFlags.perfValid.rawValue)
        kickedWithoutSyscall = RequestPath(
            kind: .kicked, isVariant: true, vcpu: variant.vcpu, ram: variant.ram, block: variant.block,
            scratchBytes: variant.scratchBytes, template: quiet)
        let capability = (try? ConnectedVM.status(of: kicked.client, allVMs: false))?.daemon.capabilities["bpf_map_page"]
        bpfMapPageUnavailable = capability?.hasPrefix("available") == true
            ? nil : (capability ?? "the daemon does not say whether it offers BPF-map pages")
        readPaths = [
            ReadPath(kind: .inVMM, vcpu: inVMM.vcpus[0], address: inVMMAddresses.upstream(.curPerf, vcpu: 0)),
            ReadPath(kind: .forwarded, vcpu: forwarded.vcpus[0], address: forwarded.addresses.upstream(.curPerf, vcpu: 0)),
            ReadPath(kind: .mirror, vcpu: kicked.vcpus[0], address: kicked.addresses.upstream(.curPerf, vcpu: 0)),
        ]
    }

    private static func connect(
        _ system: KVMSystem, _ daemon: DaemonProcess, _ name: String, profile: String, mirror: Bool,
        bpfMapPage: Bool = false
    ) throws(BenchError) -> ConnectedVM {
        let client: VCPUFreqClient
        do {
            client = try VCPUFreqClient(
                socketPath: daemon.socketPath, clientName: "vcpufreq bench doorbell",
                features: SharedPageABIFeatures.all | (bpfMapPage ? ProtocolFeature.bpfMapPage : 0))
        } catch {
            throw .vmm(.daemonUnreachable(socketPath: daemon.socketPath, error))
        }
        do {
            return try ConnectedVM(
                system: system, client: client,
                options: .init(vmName: "bench-\(name)", profile: profile, vcpuCount: 1, mirror: mirror))
        } catch {
            throw .vmm(error)
        }
    }

    /// Attaches the polled VM (path 4) and returns it with its path; detach
    /// it when done (`ConnectedVM.detach`), or the daemon keeps polling.
    func attachSuppressed() throws(BenchError) -> (ConnectedVM, RequestPath) {
        let vm = try Self.connect(system, daemon, "polled", profile: BenchTopology.polledProfile, mirror: true)
        return (vm, Self.path(.suppressed, on: vm, values: (BenchTopology.requestA, BenchTopology.requestB)))
    }

    /// Attaches path 5's VM, whose shared page must be a BPF map, and returns
    /// it with its path; detach it when done. Throws when the daemon gave a
    /// memfd (no BPF programs: the note says why).
    func attachBPFMapPage() throws(BenchError) -> (ConnectedVM, RequestPath) {
        let vm = try Self.connect(system, daemon, "bpfpage", profile: BenchTopology.schedulerProfile, mirror: true, bpfMapPage: true)
        guard vm.shared?.pageKind == .bpfMap else {
            let note = (try? vm.status()?.sharedPageNote) ?? nil
            _ = try? vm.detach()
            throw .measurement("path 5 needs a BPF-map shared page; the daemon gave a memfd: \(note ?? "no reason given")")
        }
        return (vm, Self.path(.bpfMapPage, on: vm, values: (BenchTopology.utilizationA, BenchTopology.utilizationB)))
    }

    /// A path on an attached one-vCPU VM, its block at the start of the VM's scratch RAM.
    private static func path(_ kind: RequestPathKind, on vm: ConnectedVM, values: (UInt32, UInt32)) -> RequestPath {
        let scratch = vm.vm.layout.scratch
        return RequestPath(
            kind: kind, vcpu: vm.vcpus[0], ram: vm.vm.ram, block: scratch.lowerBound,
            scratchBytes: scratch.upperBound - scratch.lowerBound,
            template: template(kind, addresses: vm.addresses, values: values))
    }

    /// Path 5: a utilization publish with no kick (kick mode "scheduler"
    /// keeps the kick bit clear), seen when the slot's `sched_seen` — which
    /// only the host's BPF programs write — shows that utilization.
    static func bpfMapPageTemplate(addresses: DeviceAddresses, values: (UInt32, UInt32)) -> RequestLoopParameters {
        var block = RequestLoopParameters(kind: .publish, target: addresses.slot(vcpu: 0), values: values)
        block.doorbell = addresses.doorbell(vcpu: 0)
        block.field = SharedPageABI.Slot.utilization
        let flags = SharedPageABI.GuestFlags.utilValid.rawValue
        block.flags = (flags, flags)
        block.watch = addresses.slotField(SharedPageABI.Slot.schedulerSeen, vcpu: 0)
        typealias Seen = SharedPageABI.SchedulerSeen
        block.mask = Seen.utilizationValidBit | Seen.utilizationMask
        func seen(_ utilization: UInt32) -> UInt32 { Seen(sequence: 0, utilization: UInt16(clamping: utilization)).word }
        block.expected = (seen(values.0), seen(values.1))
        return block
    }

    /// Paths 2-4: the request and where the guest sees it applied — util_min,
    /// the low half of `applied_clamp` in the slot's host area, which the
    /// daemon publishes after applying the hint. Shared-page requests are
    /// latency-sensitive on A and not on B, so that the daemon also changes
    /// the thread's EEVDF slice (a sched_setattr) on every one, as path 1 does.
    static func template(
        _ kind: RequestPathKind, addresses: DeviceAddresses, values: (UInt32, UInt32)
    ) -> RequestLoopParameters {
        if kind == .bpfMapPage { return bpfMapPageTemplate(addresses: addresses, values: values) }
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
    static func primer(for path: RequestPath) -> RequestLoopParameters? {
        guard path.kind != .inVMM else { return nil }
        if path.kind == .bpfMapPage {
            // A utilization the loop never asks for (the primer's util_min).
            var block = path.template
            let utilization = BenchTopology.utilMin(forKHz: BenchTopology.primer)
            block.values = (utilization, utilization)
            let seen = SharedPageABI.SchedulerSeen(sequence: 0, utilization: UInt16(utilization)).word
            block.expected = (seen, seen)
            return block
        }
        var block = path.template
        block.values = (BenchTopology.primer, BenchTopology.primer)
        block.flags = (SharedPageABI.GuestFlags.perfValid.rawValue, SharedPageABI.GuestFlags.perfValid.rawValue)
        let expected = BenchTopology.utilMin(forKHz: BenchTopology.primer)
        block.expected = (expected, expected)
        return block
    }

    func connectedVM(for kind: RequestPathKind) -> ConnectedVM? {
        switch kind {
        case .inVMM, .suppressed, .bpfMapPage: return nil
        case .forwarded: return forwarded
        case .kicked: return kicked
        }
    }

    /// The vCPU threads of paths 1-3 (what a placement moves; the VMs of
    /// paths 4 and 5 are placed when attached).
    var vcpuThreads: [Int32] {
        ([inVMM.vcpus[0]] + [forwarded, kicked].map { $0.vcpus[0] }).map { Int32($0.threadID) }
    }

    // MARK: The kick without a daemon

    /// KVM's own cost of a kick, µs per store, N back to back minus none
    /// (median of rounds): a 4-byte store the ABI's way (MMIO, the doorbell
    /// page) and, for comparison, a port write, each registered as an
    /// ioeventfd nobody waits on. The difference to path 3's back-to-back
    /// cost is what waking the daemon adds.
    func measureIdleKicks(stores: UInt32, rounds: Int) throws(BenchError) -> (mmio: Double, port: Double) {
        let address = DeviceAddressMap.defaultBase + DeviceAddressMap.doorbellOffset
        do {
            if idleDoorbells.isEmpty {
                let mmio = try EventFD()
                _ = try inVMM.registerIOEventFD(gpa: address, length: 4, eventfd: mmio.fileDescriptor)
                let port = try EventFD()
                _ = try inVMM.registerIOEventFD(
                    gpa: UInt64(Self.idleDoorbellPort), length: 4, eventfd: port.fileDescriptor, space: .port)
                idleDoorbells = [mmio, port]
            }
        } catch {
            throw .kvm(operation: "registering idle doorbells", error)
        }
        func measure(_ op: (UInt32) -> GuestOp) throws(BenchError) -> Double {
            var perRound: [Double] = []
            for _ in 0..<max(rounds, 1) {
                let empty: GuestRunResult
                let full: GuestRunResult
                do {
                    empty = try inVMM.vcpus[0].run(script: [op(0)], timeout: .seconds(60))
                    full = try inVMM.vcpus[0].run(script: [op(stores)], timeout: .seconds(60))
                } catch {
                    throw .kvm(operation: "storing to an idle doorbell", error)
                }
                guard full.exits.total == 0 else {
                    throw .measurement("a store to a registered ioeventfd exited to userspace: \(full.exits)")
                }
                perRound.append(max(0, Timing.microseconds(full.duration - empty.duration)) / Double(max(stores, 1)))
                for doorbell in idleDoorbells { _ = try? doorbell.read() }  // keep the counters far from their limit
            }
            return perRound.sorted()[perRound.count / 2]
        }
        let mmio = try measure { .write32(address, value: 0, count: $0) }
        let port = try measure { .portWrite(port: Self.idleDoorbellPort, width: .word32, value: 0, count: $0) }
        return (mmio, port)
    }

    /// An I/O port nothing else uses in this VM.
    static let idleDoorbellPort: UInt16 = 0x510

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
        let (vm, suppressed) = try attachSuppressed()
        defer { _ = try? vm.detach() }
        let count = UInt32(min(20_000, suppressed.sampleCapacity))
        let untimed = try suppressed.measureCost(requests: count, rounds: 3, timeout: .seconds(60))
        let timed = try suppressed.measureCost(requests: count, rounds: 3, timeout: .seconds(60), recordingSamples: true)
        let overhead = max(0, timed.microsecondsPerRequest - untimed.microsecondsPerRequest) * 1000
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
        for vm in [forwarded, kicked] { _ = try? vm.detach() }
        daemon.stop()
        Self.removeDirectory(directory)
    }

    deinit { if !tornDown { daemon.stop(); Self.removeDirectory(directory) } }

    static func removeDirectory(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }
}
