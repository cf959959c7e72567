/// The shared page as the host and guest algorithms see it: 32-bit
/// little-endian words at byte offsets from the start of the region.
///
/// Deliberately minimal, so the daemon can implement it over an mmap'ed memfd
/// with atomics and tests over an array or a schedule. Offsets are always
/// 4-aligned and inside the region when they come from `SharedPageHost` or
/// `SharedPageGuest`; implementations must still not trap on a bad one
/// (load 0, drop the store), since trace replay forwards guest offsets.
public protocol SharedPageMemory {
    /// Relaxed atomic load (no ordering, but never torn).
    func load(_ offset: Int) -> UInt32
    /// Load-acquire: later loads and stores are not moved before it.
    func loadAcquire(_ offset: Int) -> UInt32
    /// Relaxed atomic store.
    func store(_ offset: Int, _ value: UInt32)
    /// Store-release: earlier loads and stores are visible before it.
    func storeRelease(_ offset: Int, _ value: UInt32)
    /// Sequentially consistent fence: orders earlier stores before later
    /// loads (StoreLoad), which acquire/release alone never do. The kick
    /// suppression handshake depends on it on both sides.
    func fullFence()
}

extension SharedPageMemory {
    /// Emulates a guest access the device model passed back as
    /// `AccessResult.sharedPageOffset` (a VMM that forwards the page's
    /// accesses instead of mapping it). `offset` must be naturally aligned
    /// for `width` (the device model checks); a 1- or 2-byte write is a
    /// read-modify-write of its word, an 8-byte access two words, low first.
    /// Returns the value read (0 for writes and bad widths).
    public func emulateAccess(offset: UInt64, width: Int, value: UInt64?) -> UInt64 {
        guard offset <= UInt64(Int.max - 8) else { return 0 }
        let word = Int(offset & ~3)
        let shift = UInt32((offset & 3) * 8)
        switch width {
        case 1, 2:
            let mask: UInt32 = (width == 1 ? 0xff : 0xffff) << shift
            guard let value else { return UInt64((load(word) & mask) >> shift) }
            let merged = (load(word) & ~mask) | ((UInt32(truncatingIfNeeded: value) << shift) & mask)
            store(word, merged)
            return 0
        case 4:
            guard let value else { return UInt64(load(word)) }
            store(word, UInt32(truncatingIfNeeded: value))
            return 0
        case 8:
            guard let value else { return UInt64(load(word)) | UInt64(load(word + 4)) << 32 }
            store(word, UInt32(truncatingIfNeeded: value))
            store(word + 4, UInt32(truncatingIfNeeded: value >> 32))
            return 0
        default:
            return 0
        }
    }
}

/// A shared page in an ordinary array: for tests, trace replay and the load
/// generator. Single-threaded only (the fence is a no-op); the two-thread
/// tests use an atomic implementation of their own.
public final class ArraySharedPageMemory: SharedPageMemory {
    public private(set) var words: [UInt32]

    /// A zero-filled region of `byteCount` bytes (rounded up to whole words).
    public init(byteCount: Int) {
        words = Array(repeating: 0, count: (max(0, byteCount) + 3) / 4)
    }

    /// A zero-filled region sized for `vcpuCount` slots.
    public convenience init(vcpuCount: Int) {
        self.init(byteCount: SharedPageABI.regionSize(vcpuCount: max(0, vcpuCount)))
    }

    public var byteCount: Int { words.count * 4 }

    /// Word index of `offset`, nil when unaligned or outside the region.
    @inline(__always)
    private func index(_ offset: Int) -> Int? {
        guard offset >= 0, offset & 3 == 0, offset / 4 < words.count else { return nil }
        return offset / 4
    }

    public func load(_ offset: Int) -> UInt32 {
        guard let index = index(offset) else { return 0 }
        return words[index]
    }

    public func loadAcquire(_ offset: Int) -> UInt32 { load(offset) }

    public func store(_ offset: Int, _ value: UInt32) {
        guard let index = index(offset) else { return }
        words[index] = value
    }

    public func storeRelease(_ offset: Int, _ value: UInt32) { store(offset, value) }

    public func fullFence() {}
}
