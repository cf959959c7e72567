/// Guest memory as a virtqueue sees it: byte ranges at guest-physical
/// addresses. The daemon implements it over the front-end's mapped memory
/// table (`GuestMemoryTable`), tests and fuzzers over a buffer of their own.
///
/// Every address comes from the guest, so an implementation must return nil
/// (never trap) for a range that is not wholly inside one region, including
/// one whose end overflows 64 bits.
public protocol GuestMemory {
    /// The `count` bytes at guest-physical `address`, or nil when the range
    /// is not wholly inside one region. `count` 0 is a valid empty range
    /// inside a region.
    func bytes(atGuestAddress address: UInt64, count: Int) -> UnsafeMutableRawBufferPointer?
}

/// One region of guest RAM mapped into this process.
/// Sendable: the pointer names a mapping, which never moves; the guest's
/// stores into it are the virtqueue's concern.
public struct GuestMemoryRegion: @unchecked Sendable {
    public var guestAddress: UInt64
    public var size: UInt64
    /// The front-end's own address of the region (ring addresses use it).
    public var userAddress: UInt64
    /// Where this process sees the region's first byte.
    public var base: UnsafeMutableRawPointer

    public init(guestAddress: UInt64, size: UInt64, userAddress: UInt64, base: UnsafeMutableRawPointer) {
        self.guestAddress = guestAddress
        self.size = size
        self.userAddress = userAddress
        self.base = base
    }
}

/// The memory table of one front-end: at most 8 regions, translated by a
/// linear search (faster than anything cleverer at that size). Pure: the
/// caller maps the regions and keeps the mappings alive while it uses this.
public struct GuestMemoryTable: GuestMemory, @unchecked Sendable {
    public let regions: [GuestMemoryRegion]

    /// Checks the table: 1...8 regions, each non-empty, none whose guest or
    /// user range overflows 64 bits (or this process's `Int`), no two whose
    /// guest ranges overlap.
    public init(regions: [GuestMemoryRegion]) throws(VhostUserError) {
        guard (1...VhostUserLimits.maximumRegions).contains(regions.count) else {
            throw .badMemoryTable("\(regions.count) regions; 1...\(VhostUserLimits.maximumRegions) allowed")
        }
        for (index, region) in regions.enumerated() {
            guard region.size > 0, region.size <= UInt64(Int.max) else {
                throw .badMemoryTable("region \(index) has size \(region.size)")
            }
            guard region.guestAddress <= UInt64.max - (region.size - 1), region.userAddress <= UInt64.max - (region.size - 1) else {
                throw .badMemoryTable("region \(index) runs past the end of the address space")
            }
            for other in regions[..<index] {
                let overlaps = region.guestAddress <= other.guestAddress + (other.size - 1)
                    && other.guestAddress <= region.guestAddress + (region.size - 1)
                if overlaps { throw .badMemoryTable("region \(index) overlaps another region's guest addresses") }
            }
        }
        self.regions = regions
    }

    public func bytes(atGuestAddress address: UInt64, count: Int) -> UnsafeMutableRawBufferPointer? {
        guard count >= 0 else { return nil }
        for region in regions where address >= region.guestAddress {
            let offset = address - region.guestAddress
            guard offset < region.size, UInt64(count) <= region.size - offset else { continue }
            return UnsafeMutableRawBufferPointer(start: region.base + Int(offset), count: count)
        }
        return nil
    }

    /// The guest-physical address of the front-end's user address `address`,
    /// when `count` bytes from it lie in one region (ring addresses of
    /// SET_VRING_ADDR are user addresses).
    public func guestAddress(ofUserAddress address: UInt64, count: Int) -> UInt64? {
        guard count >= 0 else { return nil }
        for region in regions where address >= region.userAddress {
            let offset = address - region.userAddress
            guard offset < region.size, UInt64(count) <= region.size - offset else { continue }
            return region.guestAddress + offset
        }
        return nil
    }
}
