import Foundation
import SystemPackage
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// One VM as its VMM presents it to the daemon: its own connection (HELLO,
/// ATTACH with the TIDs of idle threads standing in for vCPU threads,
/// MAP_SHARED with doorbells), and the VMM's MAP_SHARED mapping of the
/// shared page — the memory KVM would map into the guest. Also the VMM of
/// scripts/test-kernels' guest driver (VCPUFreqKernelLab).
public final class EmulatedVM {
    public let name: String
    public let client: VCPUFreqClient
    let attached: AttachOutcome
    public let vcpuCount: Int
    /// A memfd, or a BPF map the host's BPF programs read in place (asked
    /// for with `bpfMapPage`; the daemon gives a memfd when it cannot).
    public let pageKind: SharedPageKind
    /// The VMM's mapping of the whole memfd (kept alive while the VM is).
    private let mapping: MappedRegion
    let page: AtomicSharedPageMemory
    public let guest: SharedPageGuest<AtomicSharedPageMemory>
    /// Doorbell i of vCPU i: the eventfd a VMM registers as KVM ioeventfd.
    let doorbells: [FileDescriptor]
    private var detached = false

    struct AttachOutcome {
        var vmID: UInt32
        var actuators: String
    }

    /// How long the shared page may take to show an active host header.
    static let headerTimeoutSeconds = 5.0

    public init(
        socketPath: String, name: String, profile: String, threadIDs: [Int32], clientName: String = "vcpufreq-bench",
        bpfMapPage: Bool = false
    ) throws {
        self.name = name
        vcpuCount = threadIDs.count
        do {
            client = try VCPUFreqClient(
                socketPath: socketPath, clientName: clientName,
                features: SharedPageABIFeatures.all | (bpfMapPage ? ProtocolFeature.bpfMapPage : 0))
            let ok = try client.attach(vmName: name, profile: profile, threadIDs: threadIDs)
            attached = AttachOutcome(vmID: ok.vmID, actuators: ok.actuators)
            let shared = try client.mapShared(mirror: false, doorbells: true)
            defer {
                try? shared.page.close()
                try? shared.mirror?.close()
            }
            guard shared.doorbells.count == threadIDs.count else {
                for bell in shared.doorbells { try? bell.close() }
                throw BenchError("VM \(name): \(shared.doorbells.count) doorbells for \(threadIDs.count) vCPUs")
            }
            doorbells = shared.doorbells
            let layout = shared.layout
            pageKind = layout.pageKind
            // A BPF-map page is the whole map from offset 0 (the kernel refuses a larger mmap).
            let mappedBytes = pageKind == .bpfMap ? layout.pageSize : layout.memfdSize
            guard layout.pageSize >= UInt64(SharedPageABI.regionSize(vcpuCount: threadIDs.count)),
                layout.pageOffset + layout.pageSize <= mappedBytes
            else {
                throw BenchError("VM \(name): SHARED_OK layout does not hold \(threadIDs.count) slots: \(layout)")
            }
            mapping = try MappedRegion(mapping: shared.page, byteCount: Int(mappedBytes), writable: true)
            page = AtomicSharedPageMemory(base: mapping.baseAddress + Int(layout.pageOffset), byteCount: Int(layout.pageSize))
        } catch let error as ClientError {
            throw BenchError("VM \(name): \(error)")
        } catch let error as Errno {
            throw BenchError("VM \(name): cannot map the shared page: \(error)")
        }
        guest = SharedPageGuest(memory: page, vcpuCount: threadIDs.count)
        try waitForActiveHeader()
    }

    /// A guest trusts the page once `host_status` says active (acquire).
    private func waitForActiveHeader() throws {
        let deadline = Date().addingTimeInterval(Self.headerTimeoutSeconds)
        while Date() < deadline {
            let status = SharedPageABI.HostStatus(rawValue: page.loadAcquire(SharedPageABI.Header.hostStatus))
            if status.contains(.active), page.load(SharedPageABI.Header.magic) == SharedPageABI.magic { return }
            usleep(1000)
        }
        throw BenchError("VM \(name): the shared page header never became active")
    }

    /// The daemon's guest-physical offset of vCPU `vcpu`'s util_hint register.
    static func utilHintOffset(vcpu: Int) -> UInt64 {
        DeviceAddressMap.utilHintOffset + UInt64(vcpu) * UtilHintABI.windowSize + UtilHintABI.Register.utilHint.rawValue
    }

    /// A guest request through the shared page: vCPU `vcpu`'s utilization
    /// (0...1024) and latency flag, and its doorbell rung when the host asked
    /// for kicks (what KVM's ioeventfd does for a guest store).
    public func publish(vcpu: Int, utilization: UInt32, latencySensitive: Bool = false) throws {
        var flags: SharedPageABI.GuestFlags = .utilValid
        if latencySensitive { flags.insert(.latencySensitive) }
        guard guest.publish(slot: vcpu, utilization: utilization, performanceKHz: 0, flags: flags) else { return }
        var one: UInt64 = 1
        let written = withUnsafeBytes(of: &one) { Glibc.write(doorbells[vcpu].rawValue, $0.baseAddress, 8) }
        guard written == 8 else { throw BenchError("VM \(name): doorbell \(vcpu) write failed: errno \(errno)") }
    }

    /// What the host's BPF programs last wrote in vCPU `vcpu`'s slot (pages
    /// of kind `.bpfMap`; nothing else writes these words): what they read
    /// from the guest half, and where the kernel ran the vCPU thread.
    public func scheduler(vcpu: Int) -> (seen: SharedPageABI.SchedulerSeen?, placement: SharedPageABI.SchedulerPlacement?) {
        let base = SharedPageABI.slotOffset(vcpu)
        return (SharedPageABI.SchedulerSeen(word: page.loadAcquire(base + SharedPageABI.Slot.schedulerSeen)),
                SharedPageABI.SchedulerPlacement(word: page.loadAcquire(base + SharedPageABI.Slot.schedulerPlacement)))
    }

    /// The guest `sequence` of vCPU `vcpu`'s slot (its last publication).
    public func guestSequence(vcpu: Int) -> UInt32 {
        page.loadAcquire(SharedPageABI.slotOffset(vcpu) + SharedPageABI.Slot.sequence)
    }

    /// DETACH (the daemon restores the threads), then the doorbells go.
    public func detach() {
        guard !detached else { return }
        detached = true
        _ = try? client.detach()
        for bell in doorbells { try? bell.close() }
    }

    deinit { detach() }
}
