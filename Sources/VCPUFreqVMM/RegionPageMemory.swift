import Atomics
import VCPUFreqCore
import VCPUFreqKVM

/// `SharedPageMemory` over the VMM's own mapping of the daemon's memfd (the
/// shared page region it also maps into the guest): real atomics, so the VMM
/// reads the host area and the guest half with the orderings docs/abi.md
/// promises while the guest and the daemon write them. Offsets outside the
/// region or unaligned read 0 and drop stores.
public struct RegionPageMemory: SharedPageMemory, @unchecked Sendable {
    let region: GuestMemoryRegion

    public init(region: GuestMemoryRegion) { self.region = region }

    @inline(__always)
    private func word(_ offset: Int) -> UnsafeAtomic<UInt32>? {
        guard offset >= 0, offset & 3 == 0, offset <= region.size - 4 else { return nil }
        return UnsafeAtomic(at: (region.hostAddress + offset).assumingMemoryBound(to: UnsafeAtomic<UInt32>.Storage.self))
    }

    public func load(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .relaxed) ?? 0 }
    public func loadAcquire(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .acquiring) ?? 0 }
    public func store(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .relaxed) }
    public func storeRelease(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .releasing) }
    public func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}
