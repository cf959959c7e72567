import Atomics
import SystemPackage
import VCPUFreqBPF
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// One VM's shared memory: the shared page region (mapped read-write into
/// the guest) and, on request, the read-only mirror of the upstream register
/// windows (mapped with KVM_MEM_READONLY), plus one doorbell eventfd per
/// vCPU. The daemon keeps its own read-write mappings.
///
/// The page is a memfd that also holds the mirror, or — for a VMM that can
/// take one, when the BPF programs run — an mmapable BPF array map that the
/// host's BPF programs read in place (`BPFPageMap`); the mirror is then a
/// memfd of its own. The layout of the page is the same either way.
final class SharedRegion {
    /// What holds the page.
    enum Backing {
        /// One memfd: the page at 0, the mirror after it.
        case memfd(MemoryFile)
        /// The page's BPF map (at `index` of vm_pages), and the mirror's memfd.
        case bpfMap(BPFPageMap, index: UInt32, mirror: MemoryFile?)
    }

    let backing: Backing
    /// The daemon's mappings: the page (and, for a memfd, the mirror behind it);
    /// the mirror's own for a BPF-map page.
    private let pageMapping: MappedRegion
    private let mirrorMapping: MappedRegion?
    private let mirrorBase: UnsafeMutableRawPointer?
    let pageSize: Int
    let mirrorSize: Int
    let memory: AtomicSharedPageMemory
    var host: SharedPageHost<AtomicSharedPageMemory>
    /// Doorbell i wakes the daemon for slot i.
    let doorbells: [EventFD]

    /// `bpfPage`: the page's BPF map and its vm_pages index; nil for a memfd page.
    init(
        vm: VMModel, name: String, mirror: Bool, doorbells wantDoorbells: Bool, generation: UInt32,
        bpfPage: (map: BPFPageMap, index: UInt32)?
    ) throws(Errno) {
        let pageSize = SharedPageABI.regionSize(vcpuCount: vm.vcpuCount)
        let mirrorSize = mirror ? Int(vm.addressMap.upstreamSize) : 0
        var features = SharedPageABI.Feature.all
        if let bpfPage {
            let mirrorFile = mirrorSize > 0 ? try MemoryFile(name: "vcpufreq-\(name)-mirror", byteCount: mirrorSize) : nil
            backing = .bpfMap(bpfPage.map, index: bpfPage.index, mirror: mirrorFile)
            pageMapping = try MappedRegion(mapping: bpfPage.map.descriptor, byteCount: pageSize, writable: true)
            mirrorMapping = try mirrorFile?.map(writable: true)
            mirrorBase = mirrorMapping?.baseAddress
            features.insert(.hostScheduler)
        } else {
            let file = try MemoryFile(name: "vcpufreq-\(name)", byteCount: pageSize + mirrorSize)
            backing = .memfd(file)
            pageMapping = try file.map(writable: true)
            mirrorMapping = nil
            mirrorBase = mirrorSize > 0 ? pageMapping.baseAddress + pageSize : nil
        }
        self.pageSize = pageSize
        self.mirrorSize = mirrorSize
        memory = AtomicSharedPageMemory(base: pageMapping.baseAddress, byteCount: pageSize)
        host = SharedPageHost(memory: memory, vm: vm)
        host.initialize(
            features: features, pollIntervalMicroseconds: UInt32(clamping: vm.policy.pollIntervalMicroseconds),
            generation: generation, doorbellCount: wantDoorbells ? vm.vcpuCount : 0)
        var bells: [EventFD] = []
        if wantDoorbells {
            bells.reserveCapacity(vm.vcpuCount)
            for _ in 0..<vm.vcpuCount { bells.append(try EventFD(initialValue: 0, nonblocking: true)) }
        }
        doorbells = bells
    }

    var kind: SharedPageKind {
        if case .bpfMap = backing { return .bpfMap }
        return .memfd
    }

    /// The vm_pages index of a BPF-map page.
    var bpfIndex: UInt32? {
        if case .bpfMap(_, let index, _) = backing { return index }
        return nil
    }

    /// What SHARED_OK tells the VMM.
    func layout(vcpuCount: Int) -> DaemonMessage.SharedLayout {
        let memfdSize: Int
        let mirrorOffset: Int
        switch backing {
        case .memfd(let file): (memfdSize, mirrorOffset) = (file.byteCount, pageSize)
        case .bpfMap(_, _, let mirror): (memfdSize, mirrorOffset) = (mirror?.byteCount ?? 0, 0)
        }
        return DaemonMessage.SharedLayout(
            memfdSize: UInt64(memfdSize), pageOffset: 0, pageSize: UInt64(pageSize),
            pageDeviceOffset: DeviceAddressMap.sharedPageOffset,
            mirrorOffset: mirrorSize > 0 ? UInt64(mirrorOffset) : 0, mirrorSize: UInt64(mirrorSize),
            mirrorDeviceOffset: DeviceAddressMap.upstreamOffset,
            doorbellDeviceOffset: DeviceAddressMap.doorbellOffset, doorbellStride: UInt32(DeviceAddressMap.doorbellStride),
            doorbellCount: UInt32(doorbells.count),
            doorbellMessages: UInt32((doorbells.count + Wire.doorbellsPerMessage - 1) / Wire.doorbellsPerMessage),
            pageKind: kind)
    }

    /// The descriptors SHARED_OK carries, in order (`SharedLayout.descriptorCount`).
    var descriptors: [FileDescriptor] {
        switch backing {
        case .memfd(let file): return [file.descriptor]
        case .bpfMap(let map, _, let mirror): return [map.descriptor] + (mirror.map { [$0.descriptor] } ?? [])
        }
    }

    var hasMirror: Bool { mirrorSize > 0 }

    /// Stores one register of one vCPU's mirror window. A relaxed atomic
    /// store: the guest's loads are plain 32-bit loads, and a register is a
    /// single word, so no ordering between registers is promised (the
    /// hardware registers it mirrors promise none either).
    func writeMirror(vcpu: Int, register: UpstreamABI.Register, value: UInt32) {
        guard let mirrorBase else { return }
        let offset = vcpu * Int(UpstreamABI.windowSize) + Int(register.rawValue)
        guard vcpu >= 0, offset + 4 <= mirrorSize else { return }
        let word = UnsafeAtomic<UInt32>(
            at: (mirrorBase + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        word.store(value, ordering: .relaxed)
    }

    /// Every readable register of `vcpu`'s window as the device would answer.
    func refreshMirror(vcpu: Int, device: DeviceModel) {
        guard hasMirror else { return }
        for register in UpstreamABI.Register.allCases {
            writeMirror(vcpu: vcpu, register: register, value: device.mirrorValue(vcpu: vcpu, register: register))
        }
    }
}
