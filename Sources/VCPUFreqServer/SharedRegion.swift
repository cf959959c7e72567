import Atomics
import SystemPackage
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// One VM's shared memory: a memfd holding the shared page region (mapped
/// read-write into the guest) and, on request, the read-only mirror of the
/// upstream register windows (mapped with KVM_MEM_READONLY), plus one
/// doorbell eventfd per vCPU. The daemon keeps its own read-write mapping.
final class SharedRegion {
    let file: MemoryFile
    let mapping: MappedRegion
    let pageSize: Int
    let mirrorOffset: Int
    let mirrorSize: Int
    let memory: AtomicSharedPageMemory
    var host: SharedPageHost<AtomicSharedPageMemory>
    /// Doorbell i wakes the daemon for slot i.
    let doorbells: [EventFD]

    init(vm: VMModel, name: String, mirror: Bool, doorbells wantDoorbells: Bool, generation: UInt32) throws(Errno) {
        let pageSize = SharedPageABI.regionSize(vcpuCount: vm.vcpuCount)
        let mirrorSize = mirror ? Int(vm.addressMap.upstreamSize) : 0
        file = try MemoryFile(name: "vcpufreq-\(name)", byteCount: pageSize + mirrorSize)
        mapping = try file.map(writable: true)
        self.pageSize = pageSize
        self.mirrorOffset = pageSize
        self.mirrorSize = mirrorSize
        memory = AtomicSharedPageMemory(base: mapping.baseAddress, byteCount: pageSize)
        host = SharedPageHost(memory: memory, vm: vm)
        host.initialize(
            pollIntervalMicroseconds: UInt32(clamping: vm.policy.pollIntervalMicroseconds), generation: generation,
            doorbellCount: wantDoorbells ? vm.vcpuCount : 0)
        var bells: [EventFD] = []
        if wantDoorbells {
            bells.reserveCapacity(vm.vcpuCount)
            for _ in 0..<vm.vcpuCount { bells.append(try EventFD(initialValue: 0, nonblocking: true)) }
        }
        doorbells = bells
    }

    /// What SHARED_OK tells the VMM.
    func layout(vcpuCount: Int) -> DaemonMessage.SharedLayout {
        DaemonMessage.SharedLayout(
            memfdSize: UInt64(file.byteCount), pageOffset: 0, pageSize: UInt64(pageSize),
            pageDeviceOffset: DeviceAddressMap.sharedPageOffset,
            mirrorOffset: mirrorSize > 0 ? UInt64(mirrorOffset) : 0, mirrorSize: UInt64(mirrorSize),
            mirrorDeviceOffset: DeviceAddressMap.upstreamOffset,
            doorbellDeviceOffset: DeviceAddressMap.doorbellOffset, doorbellStride: UInt32(DeviceAddressMap.doorbellStride),
            doorbellCount: UInt32(doorbells.count),
            doorbellMessages: UInt32((doorbells.count + Wire.doorbellsPerMessage - 1) / Wire.doorbellsPerMessage))
    }

    var hasMirror: Bool { mirrorSize > 0 }

    /// Stores one register of one vCPU's mirror window. A relaxed atomic
    /// store: the guest's loads are plain 32-bit loads, and a register is a
    /// single word, so no ordering between registers is promised (the
    /// hardware registers it mirrors promise none either).
    func writeMirror(vcpu: Int, register: UpstreamABI.Register, value: UInt32) {
        guard hasMirror else { return }
        let offset = mirrorOffset + vcpu * Int(UpstreamABI.windowSize) + Int(register.rawValue)
        guard vcpu >= 0, offset + 4 <= mirrorOffset + mirrorSize else { return }
        let word = UnsafeAtomic<UInt32>(
            at: (mapping.baseAddress + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
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
