import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol

/// A reference VM served by the vcpufreq daemon: the worked example of what
/// a VMM does (docs/reference-vmm.md, "A VMM as a vcpufreq client").
///
/// 1. Connect to the daemon (HELLO) — before creating anything, so a missing
///    daemon fails fast.
/// 2. Create the VM with `vcpuCount` vCPUs, each on its own host thread,
///    with a `DaemonDevice` as the MMIO handler.
/// 3. ATTACH with the vCPU thread IDs (the daemon sets hints on exactly
///    these threads); the reply gives the device base of the profile.
/// 4. MAP_SHARED (optional): map the shared page read-write and the mirror
///    read-only, register the doorbells as ioeventfds (`SharedMapping`).
/// 5. Run guest programs; DETACH (or close the connection) at the end.
public final class ConnectedVM: @unchecked Sendable {
    /// What to ask the daemon for.
    public struct Options: Sendable {
        /// VM name, unique among the daemon's VMs.
        public var vmName: String
        /// Profile to attach with; empty = the topology's first `[[vm]]`.
        public var profile: String
        public var vcpuCount: Int
        /// MAP_SHARED at all (the shared page region).
        public var sharedPage: Bool
        /// Also the read-only register mirror (needs `sharedPage`).
        public var mirror: Bool
        /// Also doorbells registered as ioeventfds (needs `sharedPage`).
        public var doorbells: Bool
        /// Guest RAM; must end below the device base.
        public var ramSize: UInt64
        /// Take the shared page as a BPF map when the daemon offers one
        /// (HELLO feature `ProtocolFeature.bpfMapPage`): then the host's BPF
        /// programs read the guest's requests in place. Used only by the
        /// convenience initialiser, which says HELLO.
        public var bpfMapPage: Bool

        public init(
            vmName: String, profile: String = "", vcpuCount: Int, sharedPage: Bool = true, mirror: Bool = true,
            doorbells: Bool = true, ramSize: UInt64 = GuestLayout.defaultRAMSize, bpfMapPage: Bool = true
        ) {
            self.vmName = vmName
            self.profile = profile
            self.vcpuCount = vcpuCount
            self.sharedPage = sharedPage
            self.mirror = mirror
            self.doorbells = doorbells
            self.ramSize = ramSize
            self.bpfMapPage = bpfMapPage
        }
    }

    public let options: Options
    public let client: VCPUFreqClient
    public let vm: VirtualMachine
    public let device: DaemonDevice
    /// The daemon's ATTACH_OK: VM id, base address, profile, actuators.
    public let attachment: DaemonMessage.AttachOK
    public let addresses: DeviceAddresses
    /// The mapped shared memory; nil when `options.sharedPage` is false.
    public let shared: SharedMapping?
    private var detached = false

    /// Opens /dev/kvm and connects to the daemon at `socketPath`, then builds
    /// and attaches the VM.
    /// - Throws: `VMMError.kvmUnavailable` (no usable KVM),
    ///   `.daemonUnreachable`, `.daemon` (ATTACH or MAP_SHARED refused),
    ///   `.badDeviceBase`, `.badSharedLayout`, `.kvm`.
    public convenience init(socketPath: String, options: Options, clientName: String = "vcpufreq reference vmm") throws(VMMError) {
        let system: KVMSystem
        do { system = try KVMSystem() } catch { throw VMMError.opening(error) }
        let client: VCPUFreqClient
        do {
            client = try VCPUFreqClient(
                socketPath: socketPath, clientName: clientName,
                features: SharedPageABIFeatures.all | (options.bpfMapPage ? ProtocolFeature.bpfMapPage : 0))
        } catch {
            throw .daemonUnreachable(socketPath: socketPath, error)
        }
        try self.init(system: system, client: client, options: options)
    }

    /// Builds and attaches the VM on an open KVM and a connected client.
    public init(system: KVMSystem, client: VCPUFreqClient, options: Options) throws(VMMError) {
        #if !arch(x86_64)
            throw VMMError.kvmUnavailable(.unsupportedArchitecture)
        #endif
        self.options = options
        self.client = client
        let device = DaemonDevice(client: client, vcpuCount: options.vcpuCount)
        self.device = device
        let vm: VirtualMachine
        do {
            vm = try VirtualMachine(system: system, vcpuCount: options.vcpuCount, ramSize: options.ramSize, handler: device)
        } catch {
            throw VMMError.kvm(error)
        }
        self.vm = vm
        let attachment: DaemonMessage.AttachOK
        do {
            attachment = try client.attach(
                vmName: options.vmName, profile: options.profile, threadIDs: vm.vcpus.map { Int32($0.threadID) })
        } catch {
            throw VMMError.daemon(operation: "ATTACH", error)
        }
        self.attachment = attachment
        let base = attachment.baseAddress
        addresses = DeviceAddresses(base: base, vcpuCount: options.vcpuCount)
        if base < options.ramSize {
            throw VMMError.badDeviceBase(base: base, reason: "guest RAM reaches 0x\(String(options.ramSize, radix: 16))")
        }
        if base > GuestLayout.doneAddress - DeviceAddressMap.totalSpan {
            throw VMMError.badDeviceBase(
                base: base, reason: "the device space must end below 0x\(String(GuestLayout.doneAddress, radix: 16)) "
                    + "(this VMM's guests address the first 1 GiB)")
        }
        if options.sharedPage {
            let memory: VCPUFreqClient.SharedMemory
            do {
                memory = try client.mapShared(mirror: options.mirror, doorbells: options.doorbells)
            } catch {
                throw VMMError.daemon(operation: "MAP_SHARED", error)
            }
            shared = try SharedMapping(memory, vm: vm, base: base, vcpuCount: options.vcpuCount)
        } else {
            shared = nil
        }
        device.configure(base: base, mirrorMapped: shared?.mirror != nil)
    }

    deinit {
        if !detached { _ = try? client.detach() }
    }

    public var vcpuCount: Int { options.vcpuCount }
    public var vcpus: [VCPU] { vm.vcpus }
    /// Guest RAM free for guest programs (buffers, private slots).
    public var scratch: Range<UInt64> { vm.layout.scratch }

    /// Runs `scripts[i]` on vCPU i, all at once, under one deadline.
    public func run(_ scripts: [GuestScript], timeout: Duration = .seconds(30)) -> [Result<GuestRunResult, KVMError>] {
        vm.run(scripts, timeout: timeout)
    }

    /// Runs one script on one vCPU.
    public func run(vcpu: Int, _ script: GuestScript, timeout: Duration = .seconds(30)) throws(KVMError) -> GuestRunResult {
        guard vm.vcpus.indices.contains(vcpu) else { throw .invalidArgument("no vCPU \(vcpu)") }
        return try vm.vcpus[vcpu].run(script: script, timeout: timeout)
    }

    /// KVM exits of vCPU `vcpu` since the VM was built, by kind and reason.
    public func exitCounts(vcpu: Int) -> ExitCounts {
        vm.vcpus.indices.contains(vcpu) ? vm.vcpus[vcpu].exitCounts : ExitCounts()
    }

    /// What forwarding vCPU `vcpu`'s exits to the daemon cost so far.
    public func forwarding(vcpu: Int) -> ForwardingCounts { device.counts(vcpu: vcpu) }

    /// The daemon's status of this VM (STATUS on this connection).
    public func status() throws(VMMError) -> StatusDocument.VM? {
        try Self.status(of: client, allVMs: false).vms.first { $0.id == attachment.vmID }
    }

    /// A daemon's whole status document, read through `client` (works
    /// around the client's decoding of `peer_pid`, see `StatusDecoding`).
    public static func status(of client: VCPUFreqClient, allVMs: Bool = true) throws(VMMError) -> StatusDocument {
        let json: [UInt8]
        do { json = try client.statusJSON(allVMs: allVMs) } catch { throw .daemon(operation: "STATUS", error) }
        do {
            return try StatusDecoding.decode(json)
        } catch {
            throw .daemon(operation: "STATUS", .badStatus("\(error)"))
        }
    }

    /// DETACH: the daemon restores every vCPU thread; returns how many.
    @discardableResult
    public func detach() throws(VMMError) -> UInt32 {
        guard !detached else { return 0 }
        detached = true
        do { return try client.detach() } catch { throw .daemon(operation: "DETACH", error) }
    }
}
