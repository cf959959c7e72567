/// One memslot of a VM, seen from the host: the guest-physical range and the
/// host mapping behind it. Host and guest share the memory; a load or store
/// here is seen by the guest (and vice versa) with no exit. The mapping lives
/// as long as the VM (this value keeps it alive).
public struct GuestMemoryRegion: @unchecked Sendable {
    public let guestPhysicalAddress: UInt64
    public let size: Int
    /// KVM memslot number.
    public let slot: UInt32
    /// KVM_MEM_READONLY: guest loads are served from memory, guest stores
    /// exit to the `MMIOHandler` as MMIO writes.
    public let isReadOnly: Bool
    /// The host mapping (always writable by the host).
    public let hostAddress: UnsafeMutableRawPointer
    let owner: AnyObject

    init(
        guestPhysicalAddress: UInt64, size: Int, slot: UInt32, isReadOnly: Bool,
        hostAddress: UnsafeMutableRawPointer, owner: AnyObject
    ) {
        self.guestPhysicalAddress = guestPhysicalAddress
        self.size = size
        self.slot = slot
        self.isReadOnly = isReadOnly
        self.hostAddress = hostAddress
        self.owner = owner
    }

    public var guestRange: Range<UInt64> { guestPhysicalAddress..<guestPhysicalAddress + UInt64(size) }

    /// The byte offset of `gpa` in this region, nil when outside it.
    public func offset(of gpa: UInt64) -> Int? {
        guestRange.contains(gpa) ? Int(gpa - guestPhysicalAddress) : nil
    }

    public var bytes: UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(start: hostAddress, count: size)
    }

    /// An acquire load of the aligned 32-bit word at `offset` (pairs with
    /// the guest's ordered x86 stores).
    public func load32(at offset: Int) -> UInt32 {
        precondition(offset >= 0 && offset + 4 <= size && offset % 4 == 0, "offset \(offset) outside the region")
        return KVMCall.load32(hostAddress + offset)
    }

    /// A release store of the aligned 32-bit word at `offset`.
    public func store32(_ value: UInt32, at offset: Int) {
        precondition(offset >= 0 && offset + 4 <= size && offset % 4 == 0, "offset \(offset) outside the region")
        KVMCall.store32(hostAddress + offset, value)
    }

    public func load64(at offset: Int) -> UInt64 {
        precondition(offset >= 0 && offset + 8 <= size && offset % 8 == 0, "offset \(offset) outside the region")
        return KVMCall.load64(hostAddress + offset)
    }

    public func store64(_ value: UInt64, at offset: Int) {
        precondition(offset >= 0 && offset + 8 <= size && offset % 8 == 0, "offset \(offset) outside the region")
        KVMCall.store64(hostAddress + offset, value)
    }
}
