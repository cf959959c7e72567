import Atomics
import VCPUFreqCore

/// `SharedPageMemory` over a process's own mapping of a VM's shared page
/// (the daemon's memfd, MAP_SHARED): every word access is a real atomic
/// (swift-atomics), so the guest on one CPU, the daemon and the VMM on others
/// see each other's stores with the orderings docs/abi.md promises. The
/// daemon, the reference VMM and the benchmark's emulated VMMs all use it; a
/// VMM author mapping the page can too. Offsets outside the region or
/// unaligned read 0 and drop the store (never trap: replayed and forwarded
/// accesses reach here as well).
///
/// The mapping must outlive every use; this type does not own it.
public struct AtomicSharedPageMemory: SharedPageMemory, @unchecked Sendable {
    /// Start of the shared page inside the mapping.
    public let base: UnsafeMutableRawPointer
    public let byteCount: Int

    public init(base: UnsafeMutableRawPointer, byteCount: Int) {
        self.base = base
        self.byteCount = byteCount
    }

    @inline(__always)
    private func word(_ offset: Int) -> UnsafeAtomic<UInt32>? {
        guard offset >= 0, offset & 3 == 0, offset <= byteCount - 4 else { return nil }
        return UnsafeAtomic(at: (base + offset).assumingMemoryBound(to: UInt32.AtomicRepresentation.self))
    }

    public func load(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .relaxed) ?? 0 }
    public func loadAcquire(_ offset: Int) -> UInt32 { word(offset)?.load(ordering: .acquiring) ?? 0 }
    public func store(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .relaxed) }
    public func storeRelease(_ offset: Int, _ value: UInt32) { word(offset)?.store(value, ordering: .releasing) }
    public func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}
