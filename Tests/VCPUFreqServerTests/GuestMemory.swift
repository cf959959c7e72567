import Atomics
import SystemPackage
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// `SharedPageMemory` over this process's mapping of the daemon's memfd:
/// the test writes slots as a guest would (real atomics, the daemon reads
/// them concurrently from its own mapping).
struct MappedGuestMemory: SharedPageMemory, @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    private func word(_ offset: Int) -> UnsafeAtomic<UInt32>? {
        guard offset >= 0, offset & 3 == 0, offset + 4 <= byteCount else { return nil }
        return UnsafeAtomic(at: (base + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    func load(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .relaxed) ?? 0 }
    func loadAcquire(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .acquiring) ?? 0 }
    func store(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .relaxed) }
    func storeRelease(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .releasing) }
    func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}

/// What MAP_SHARED gave the VMM, mapped: the shared page region (as the
/// guest sees it) and the mirror, at the offsets the daemon sent, plus the
/// doorbells. Closes every descriptor in deinit.
final class MappedShared {
    let shared: VCPUFreqClient.SharedMemory
    let guest: SharedPageGuest<MappedGuestMemory>
    /// One mapping of the whole memfd (a VMM maps the page and the mirror
    /// separately; the bytes are the same).
    private let whole: MappedRegion

    init(_ shared: VCPUFreqClient.SharedMemory, vcpuCount: Int) throws {
        self.shared = shared
        whole = try MappedRegion(mapping: shared.page, byteCount: Int(shared.layout.memfdSize), writable: true)
        let memory = MappedGuestMemory(
            base: whole.baseAddress + Int(shared.layout.pageOffset), byteCount: Int(shared.layout.pageSize))
        guest = SharedPageGuest(memory: memory, vcpuCount: vcpuCount)
    }

    var memory: MappedGuestMemory { guest.memory }

    /// A 32-bit word of the read-only mirror: vCPU `vcpu`'s upstream window, `register`.
    func mirrorWord(vcpu: Int, _ register: UpstreamABI.Register) -> UInt32 {
        let offset = Int(shared.layout.mirrorOffset) + vcpu * Int(UpstreamABI.windowSize) + Int(register.rawValue)
        let atomic = UnsafeAtomic<UInt32>(
            at: (whole.baseAddress + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
        return atomic.load(ordering: .acquiring)
    }

    /// What KVM does on the guest's doorbell store: +1 on the eventfd.
    func ring(_ vcpu: Int) throws {
        var one: UInt64 = 1
        _ = try withUnsafeBytes(of: &one) { try shared.doorbells[vcpu].write($0) }
    }

    /// Publishes a request in `slot` like the guest and rings when asked to;
    /// returns the sequence published and whether the host wanted a kick.
    @discardableResult
    func publish(
        slot: Int, utilization: UInt32 = 0, performanceKHz: UInt32 = 0, flags: SharedPageABI.GuestFlags
    ) throws -> (sequence: UInt32, kicked: Bool) {
        let kick = guest.publish(slot: slot, utilization: utilization, performanceKHz: performanceKHz, flags: flags)
        let sequence = memory.load(SharedPageABI.slotOffset(slot) + SharedPageABI.Slot.sequence)
        if kick { try ring(slot) }
        return (sequence, kick)
    }

    deinit {
        try? shared.page.close()
        for bell in shared.doorbells { try? bell.close() }
    }
}
