import Atomics
import VCPUFreqCore

/// `SharedPageMemory` over the daemon's mapping of a VM's memfd: every word
/// access is a real atomic (swift-atomics), so the guest on another CPU and
/// the daemon see each other's stores with the orderings docs/abi.md
/// promises. Offsets outside the region or unaligned read 0 and drop stores
/// (never trap: trace replay and forwarded accesses reach here too).
struct MappedSharedPageMemory: SharedPageMemory, @unchecked Sendable {
    /// Start of the shared page region inside the mapping.
    let base: UnsafeMutableRawPointer
    let byteCount: Int

    init(base: UnsafeMutableRawPointer, byteCount: Int) {
        self.base = base
        self.byteCount = byteCount
    }

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
