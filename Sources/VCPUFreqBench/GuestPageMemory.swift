import Atomics
import VCPUFreqCore

/// The guest's view of a VM's shared page: the emulated VMM's own
/// MAP_SHARED mapping of the daemon's memfd (what KVM would map into the
/// guest). Every word access is a real atomic, so `SharedPageGuest.publish`
/// here has the orderings docs/abi.md specifies against the daemon on
/// another CPU. Offsets outside the region or unaligned read 0 and drop the
/// store, as the protocol asks of every `SharedPageMemory`.
struct GuestPageMemory: SharedPageMemory, @unchecked Sendable {
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    @inline(__always)
    private func word(_ offset: Int) -> UnsafeAtomic<UInt32>? {
        guard offset >= 0, offset & 3 == 0, offset <= byteCount - 4 else { return nil }
        return UnsafeAtomic(at: (base + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    func load(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .relaxed) ?? 0 }
    func loadAcquire(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .acquiring) ?? 0 }
    func store(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .relaxed) }
    func storeRelease(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .releasing) }
    func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}
