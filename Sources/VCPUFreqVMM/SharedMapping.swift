import Glibc
import SystemPackage
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux
import VCPUFreqProtocol

/// The daemon's shared memory as this VMM placed it in the guest (the
/// "What the VMM does with SHARED_OK" recipe of docs/protocol.md):
///
/// - the shared page region, a read-write memslot at base + page_device_offset
///   (requests and the host area cost the guest no exit);
/// - the read-only mirror of the upstream windows, a KVM_MEM_READONLY memslot
///   at base + mirror_device_offset (cur_perf, perftbl_len, perf_domain and
///   perftbl_rd loads cost no exit; stores still exit and are forwarded);
/// - each doorbell eventfd registered as a 4-byte MMIO ioeventfd at
///   base + doorbell_device_offset + i × stride (a kick completes in KVM).
///
/// The page is a memfd that also holds the mirror, or a BPF map (SHARED_OK
/// `page_kind` 1) that the host's BPF programs read in place, with the mirror
/// in a memfd of its own: mapped the same way, mmap(MAP_SHARED) of the
/// descriptor, only the descriptors differ.
///
/// The VMM keeps a host view of both regions to report what the daemon
/// applied (the host area) and what the guest sees.
public final class SharedMapping: @unchecked Sendable {
    public let layout: DaemonMessage.SharedLayout
    /// The shared page region (read-write for the guest).
    public let page: GuestMemoryRegion
    /// The register mirror (read-only for the guest); nil when not requested.
    public let mirror: GuestMemoryRegion?
    /// One registration per doorbell, in vCPU order.
    public let doorbells: [IOEventFDRegistration]
    /// The shared page seen through the guest's algorithms (host area reads).
    public let guestView: SharedPageGuest<AtomicSharedPageMemory>
    /// What the page is: a memfd, or a BPF map the host's BPF programs read.
    public var pageKind: SharedPageKind { layout.pageKind }
    private let descriptors: [FileDescriptor]

    /// Maps `shared` into `vm` for a device space at `base` with `vcpuCount`
    /// vCPUs. Takes ownership of the descriptors (closed on failure too).
    init(_ shared: VCPUFreqClient.SharedMemory, vm: VirtualMachine, base: UInt64, vcpuCount: Int) throws(VMMError) {
        descriptors = shared.descriptors
        layout = shared.layout
        var registered: [IOEventFDRegistration] = []
        do throws(VMMError) {
            try Self.validate(shared, vcpuCount: vcpuCount)
            let page = try Self.map(vm, base: base, device: layout.pageDeviceOffset, size: layout.pageSize,
                                    fd: shared.page, offset: layout.pageOffset, readOnly: false)
            var mirror: GuestMemoryRegion?
            if layout.mirrorSize > 0 {
                mirror = try Self.map(vm, base: base, device: layout.mirrorDeviceOffset, size: layout.mirrorSize,
                                      fd: shared.mirrorDescriptor, offset: layout.mirrorOffset, readOnly: true)
            }
            for (index, fd) in shared.doorbells.enumerated() {
                let address = base + layout.doorbellDeviceOffset + UInt64(layout.doorbellStride) * UInt64(index)
                do {
                    registered.append(try vm.registerIOEventFD(gpa: address, length: 4, eventfd: fd))
                } catch {
                    throw VMMError.kvm(error)
                }
            }
            self.page = page
            self.mirror = mirror
            doorbells = registered
            guestView = SharedPageGuest(memory: AtomicSharedPageMemory(base: page.hostAddress, byteCount: page.size), vcpuCount: vcpuCount)
        } catch {
            for registration in registered { try? vm.deregisterIOEventFD(registration) }
            for fd in shared.descriptors { try? fd.close() }
            throw error
        }
    }

    deinit {
        // KVM holds its own reference to each registered eventfd; the VM's
        // teardown drops the registrations.
        for fd in descriptors { try? fd.close() }
    }

    /// Refuses a layout whose ranges would fault on access (past the memfd's
    /// end), overlap, or do not match the VM. A BPF-map page is checked by
    /// the kernel: mmap of more than the map holds fails (EINVAL), it never
    /// faults later.
    static func validate(_ shared: VCPUFreqClient.SharedMemory, vcpuCount: Int) throws(VMMError) {
        let layout = shared.layout
        let doorbells = shared.doorbells.count
        if layout.memfdSize > 0 || layout.pageKind == .memfd {
            var status = stat()
            let memfd = layout.pageKind == .memfd ? shared.page : shared.mirrorDescriptor
            guard fstat(memfd.rawValue, &status) == 0 else {
                throw .badSharedLayout("fstat of the memfd failed (errno \(errno))")
            }
            let fileSize = UInt64(max(status.st_size, 0))
            guard layout.memfdSize <= fileSize else {
                throw .badSharedLayout("memfd_size \(layout.memfdSize) but the memfd holds \(fileSize) bytes")
            }
        }
        func inside(_ offset: UInt64, _ size: UInt64) -> Bool {
            let (end, overflow) = offset.addingReportingOverflow(size)
            return !overflow && end <= layout.memfdSize
        }
        let minimumPage = UInt64(SharedPageABI.regionSize(vcpuCount: vcpuCount))
        let pageFits = layout.pageKind == .bpfMap ? layout.pageOffset == 0 : inside(layout.pageOffset, layout.pageSize)
        guard layout.pageSize >= minimumPage, pageFits else {
            throw .badSharedLayout(
                "page \(layout.pageSize) bytes at \(layout.pageOffset): needs \(minimumPage) inside \(layout.memfdSize)")
        }
        guard layout.pageKind == .memfd || (layout.mirrorSize == 0) == (shared.mirror == nil) else {
            throw .badSharedLayout("a BPF-map page with mirror_size \(layout.mirrorSize) needs the mirror's memfd")
        }
        guard layout.pageDeviceOffset == DeviceAddressMap.sharedPageOffset else {
            throw .badSharedLayout("page_device_offset 0x\(String(layout.pageDeviceOffset, radix: 16)) is not 0x800000")
        }
        if layout.mirrorSize > 0 {
            let expected = UpstreamABI.windowSize * UInt64(vcpuCount)
            guard layout.mirrorSize == expected, inside(layout.mirrorOffset, layout.mirrorSize),
                layout.mirrorDeviceOffset == DeviceAddressMap.upstreamOffset
            else {
                throw .badSharedLayout("mirror \(layout.mirrorSize) bytes at \(layout.mirrorOffset) (device +0x"
                    + "\(String(layout.mirrorDeviceOffset, radix: 16))) does not cover \(vcpuCount) upstream windows")
            }
        }
        guard Int(layout.doorbellCount) == doorbells, doorbells == 0 || doorbells == vcpuCount,
            layout.doorbellStride >= 4, layout.doorbellDeviceOffset == DeviceAddressMap.doorbellOffset
        else {
            throw .badSharedLayout("\(doorbells) doorbell descriptors for \(layout.doorbellCount) doorbells, stride "
                + "\(layout.doorbellStride) at device +0x\(String(layout.doorbellDeviceOffset, radix: 16))")
        }
    }

    private static func map(
        _ vm: VirtualMachine, base: UInt64, device: UInt64, size: UInt64, fd: FileDescriptor, offset: UInt64,
        readOnly: Bool
    ) throws(VMMError) -> GuestMemoryRegion {
        guard size <= UInt64(Int.max), offset <= UInt64(Int64.max) else {
            throw .badSharedLayout("a region of \(size) bytes at \(offset) does not fit this host")
        }
        do {
            return try vm.addMemory(gpa: base + device, size: Int(size), from: fd, offset: Int64(offset), readOnly: readOnly)
        } catch {
            throw .kvm(error)
        }
    }

    // MARK: Reading what the daemon and the guest wrote

    /// The host area of vCPU `vcpu`'s slot (seqlock read), nil while the
    /// daemon keeps writing it or for a slot the VM lacks.
    public func hostArea(vcpu: Int) -> SharedPageGuest<AtomicSharedPageMemory>.HostArea? {
        guestView.readHostArea(slot: vcpu, attempts: 64)
    }

    /// The guest sequence the daemon last consumed from vCPU `vcpu`'s slot.
    public func acknowledgedSequence(vcpu: Int) -> UInt32 { guestView.acknowledgedSequence(slot: vcpu) }

    /// The guest's own `sequence` word of vCPU `vcpu`'s slot.
    public func guestSequence(vcpu: Int) -> UInt32 {
        guard vcpu >= 0, vcpu < guestView.vcpuCount else { return 0 }
        return guestView.memory.loadAcquire(SharedPageABI.slotOffset(vcpu) + SharedPageABI.Slot.sequence)
    }

    /// A word of the header (`SharedPageABI.Header` offsets).
    public func header(_ field: Int) -> UInt32 { guestView.memory.loadAcquire(field) }

    /// What the host's BPF programs last wrote into vCPU `vcpu`'s slot (a
    /// BPF-map page): the request they read, and where the vCPU runs. nil
    /// while not written (always on a memfd page).
    public func schedulerWords(vcpu: Int) -> (seen: SharedPageABI.SchedulerSeen?, placement: SharedPageABI.SchedulerPlacement?) {
        guard vcpu >= 0, vcpu < guestView.vcpuCount else { return (nil, nil) }
        let base = SharedPageABI.slotOffset(vcpu)
        return (
            SharedPageABI.SchedulerSeen(word: guestView.memory.load(base + SharedPageABI.Slot.schedulerSeen)),
            SharedPageABI.SchedulerPlacement(word: guestView.memory.load(base + SharedPageABI.Slot.schedulerPlacement))
        )
    }

    /// Whether the daemon asks vCPU `vcpu` to ring its doorbell (kick bit).
    public func kickRequested(vcpu: Int) -> Bool {
        guard vcpu >= 0, vcpu < guestView.vcpuCount else { return false }
        let flags = guestView.memory.load(SharedPageABI.slotOffset(vcpu) + SharedPageABI.Slot.hostFlags)
        return SharedPageABI.HostSlotFlags(rawValue: flags).contains(.kick)
    }

    /// What the guest loads from `register` of vCPU `vcpu`'s mirrored window;
    /// nil without a mirror or for a window the VM lacks.
    public func mirrorValue(vcpu: Int, register: UpstreamABI.Register) -> UInt32? {
        guard let mirror else { return nil }
        let offset = Int(UpstreamABI.windowSize) * vcpu + Int(register.rawValue)
        guard vcpu >= 0, offset + 4 <= mirror.size else { return nil }
        return mirror.load32(at: offset)
    }
}
