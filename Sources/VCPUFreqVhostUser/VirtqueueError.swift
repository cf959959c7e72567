/// Why a virtqueue is broken. The guest (or the front-end) wrote something
/// no correct driver writes; the device stops serving rather than guess.
/// Each case's description is the message the daemon logs.
public enum VirtqueueError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The queue size is not a power of two in 1...32768.
    case badSize(UInt32)
    /// A ring is not aligned as the split-ring layout requires (16, 2, 4 bytes).
    case misaligned(ring: String, address: UInt64)
    /// A ring does not lie wholly inside the memory table.
    case ringOutsideMemory(ring: String, address: UInt64, byteCount: Int)
    /// `avail.idx` moved more than a queue's worth past what was consumed.
    case availableIndexJump(availableIndex: UInt16, consumed: UInt16, size: UInt16)
    /// A chain's head, or a descriptor's `next`, is not a descriptor index.
    case indexOutOfRange(index: UInt16, tableSize: Int)
    /// Following `next` visited more descriptors than the table has: a loop.
    case loop(head: UInt16)
    /// More segments than the device accepts in one chain.
    case chainTooLong(head: UInt16, limit: Int)
    /// VIRTQ_DESC_F_INDIRECT without VIRTIO_RING_F_INDIRECT_DESC negotiated.
    case indirectNotNegotiated(head: UInt16)
    /// An indirect descriptor inside an indirect table.
    case nestedIndirect(head: UInt16)
    /// An indirect descriptor that also has VIRTQ_DESC_F_NEXT.
    case indirectWithNext(head: UInt16)
    /// An indirect table whose length is 0 or not a multiple of 16.
    case badIndirectLength(head: UInt16, length: UInt32)
    /// A buffer (or indirect table) outside the memory table.
    case bufferOutsideMemory(head: UInt16, address: UInt64, length: UInt32)
    /// A device-readable descriptor after a device-writable one.
    case readableAfterWritable(head: UInt16)

    public var description: String {
        switch self {
        case .badSize(let size): return "queue size \(size) is not a power of two in 1...32768"
        case .misaligned(let ring, let address): return "\(ring) at 0x\(String(address, radix: 16)) is misaligned"
        case .ringOutsideMemory(let ring, let address, let count):
            return "\(ring) at 0x\(String(address, radix: 16)) (\(count) bytes) is outside guest memory"
        case .availableIndexJump(let index, let consumed, let size):
            return "avail.idx \(index) is more than \(size) entries past the \(consumed) consumed"
        case .indexOutOfRange(let index, let tableSize): return "descriptor index \(index) outside a table of \(tableSize)"
        case .loop(let head): return "the chain at head \(head) loops"
        case .chainTooLong(let head, let limit): return "the chain at head \(head) has more than \(limit) segments"
        case .indirectNotNegotiated(let head): return "the chain at head \(head) uses an indirect table without INDIRECT_DESC"
        case .nestedIndirect(let head): return "the chain at head \(head) nests an indirect table"
        case .indirectWithNext(let head): return "the chain at head \(head) has an indirect descriptor with NEXT"
        case .badIndirectLength(let head, let length): return "the chain at head \(head) has an indirect table of \(length) bytes"
        case .bufferOutsideMemory(let head, let address, let length):
            return "the chain at head \(head) has a buffer at 0x\(String(address, radix: 16)) (\(length) bytes) outside guest memory"
        case .readableAfterWritable(let head): return "the chain at head \(head) has a readable buffer after a writable one"
        }
    }
}
