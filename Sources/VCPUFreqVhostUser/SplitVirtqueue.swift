import Atomics

/// Where a split virtqueue's three areas are, in guest-physical addresses.
public struct VirtqueueLayout: Equatable, Sendable {
    public var size: UInt16
    public var descriptorTable: UInt64
    public var availableRing: UInt64
    public var usedRing: UInt64

    public init(size: UInt16, descriptorTable: UInt64, availableRing: UInt64, usedRing: UInt64) {
        self.size = size
        self.descriptorTable = descriptorTable
        self.availableRing = availableRing
        self.usedRing = usedRing
    }

    /// Bytes of each area (virtio 1.x, 2.7 "Split Virtqueues"; the trailing
    /// event-index fields are left out: VIRTIO_RING_F_EVENT_IDX is not offered).
    public var descriptorTableBytes: Int { 16 * Int(size) }
    public var availableRingBytes: Int { 4 + 2 * Int(size) }
    public var usedRingBytes: Int { 4 + 8 * Int(size) }
}

/// The device side of one split virtqueue (virtio 1.x, 2.7) over guest
/// memory: pops available chains, checks and translates them into a
/// `DescriptorChain`, and returns used elements. It never knows what the
/// buffers mean (the device does).
///
/// Every field the guest wrote is read once into a local and checked before
/// use: the head and every `next` against the table size, the walk against
/// a loop (no chain visits more descriptors than its table has), every
/// buffer against the memory table, readable-before-writable, indirect
/// tables only when negotiated, never nested, never with NEXT. A failure is
/// a broken ring: the caller stops the device.
///
/// Ordering: `avail.idx` is loaded with acquire before the ring entry and
/// descriptors it publishes are read; `used.idx` is stored with release
/// after the used element. Nothing allocates after `init`.
///
/// The ring pointers point into guest memory mapped by the caller: when the
/// memory table changes the queue must be rebuilt.
public struct SplitVirtqueue {
    public let layout: VirtqueueLayout
    public let indirectAllowed: Bool
    private let descriptors: UnsafeMutableRawBufferPointer
    private let available: UnsafeMutableRawBufferPointer
    private let used: UnsafeMutableRawBufferPointer
    /// The next `avail.ring` slot to consume (the vring base of SET/GET_VRING_BASE).
    public private(set) var nextAvailable: UInt16
    /// `used.idx` as this device last published it.
    public private(set) var nextUsed: UInt16

    /// `VIRTQ_DESC_F_*` and `VIRTQ_AVAIL_F_NO_INTERRUPT`.
    static let nextFlag: UInt16 = 1, writeFlag: UInt16 = 2, indirectFlag: UInt16 = 4
    static let noInterrupt: UInt16 = 1

    /// Resolves the three areas in `memory` and checks their size and
    /// alignment. `nextAvailable` is the vring base the front-end set;
    /// `used.idx` is read back from guest memory (it survives a reconnect).
    public init(
        layout: VirtqueueLayout, memory: some GuestMemory, nextAvailable: UInt16, indirectDescriptors: Bool
    ) throws(VirtqueueError) {
        let size = Int(layout.size)
        guard size > 0, size <= Int(VhostUserLimits.maximumQueueSize), size & (size - 1) == 0 else {
            throw .badSize(UInt32(layout.size))
        }
        func area(_ name: String, _ address: UInt64, _ count: Int, alignment: UInt64) throws(VirtqueueError) -> UnsafeMutableRawBufferPointer {
            guard address % alignment == 0 else { throw .misaligned(ring: name, address: address) }
            guard let bytes = memory.bytes(atGuestAddress: address, count: count),
                let base = bytes.baseAddress, UInt(bitPattern: base) % UInt(alignment) == 0
            else {
                throw .ringOutsideMemory(ring: name, address: address, byteCount: count)
            }
            return bytes
        }
        descriptors = try area("descriptor table", layout.descriptorTable, layout.descriptorTableBytes, alignment: 16)
        available = try area("available ring", layout.availableRing, layout.availableRingBytes, alignment: 2)
        used = try area("used ring", layout.usedRing, layout.usedRingBytes, alignment: 4)
        self.layout = layout
        self.indirectAllowed = indirectDescriptors
        self.nextAvailable = nextAvailable
        nextUsed = UnsafeAtomic<UInt16>(at: Self.word(used, 2)).load(ordering: .acquiring)
    }

    private static func word(_ area: UnsafeMutableRawBufferPointer, _ offset: Int) -> UnsafeMutablePointer<UInt16.AtomicRepresentation> {
        (area.baseAddress! + offset).assumingMemoryBound(to: UInt16.AtomicRepresentation.self)
    }

    /// The head of the next available chain, or nil when the guest has
    /// published nothing new.
    public mutating func popAvailable() throws(VirtqueueError) -> UInt16? {
        let index = UInt16(littleEndian: UnsafeAtomic<UInt16>(at: Self.word(available, 2)).load(ordering: .acquiring))
        let pending = index &- nextAvailable
        guard pending != 0 else { return nil }
        guard pending <= layout.size else {
            throw .availableIndexJump(availableIndex: index, consumed: nextAvailable, size: layout.size)
        }
        let slot = Int(nextAvailable & (layout.size - 1))
        let head = UInt16(littleEndian: available.loadUnaligned(fromByteOffset: 4 + 2 * slot, as: UInt16.self))
        nextAvailable &+= 1
        return head
    }

    /// Walks the chain at `head` into `chain` (which is reset first).
    public func readChain(head: UInt16, memory: some GuestMemory, into chain: inout DescriptorChain) throws(VirtqueueError) {
        chain.reset(head: head)
        var table = descriptors
        var tableSize = Int(layout.size)
        var index = head
        var visited = 0
        var inIndirect = false
        var seenWritable = false
        while true {
            guard Int(index) < tableSize else { throw .indexOutOfRange(index: index, tableSize: tableSize) }
            visited += 1
            guard visited <= tableSize else { throw .loop(head: head) }
            let offset = 16 * Int(index)
            let address = UInt64(littleEndian: table.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let length = UInt32(littleEndian: table.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self))
            let flags = UInt16(littleEndian: table.loadUnaligned(fromByteOffset: offset + 12, as: UInt16.self))
            let next = UInt16(littleEndian: table.loadUnaligned(fromByteOffset: offset + 14, as: UInt16.self))
            if flags & Self.indirectFlag != 0 {
                guard indirectAllowed else { throw .indirectNotNegotiated(head: head) }
                guard !inIndirect else { throw .nestedIndirect(head: head) }
                guard flags & Self.nextFlag == 0 else { throw .indirectWithNext(head: head) }
                // At most 2^16 entries: every index into it is a u16.
                guard length > 0, length % 16 == 0, length / 16 <= 65536 else {
                    throw .badIndirectLength(head: head, length: length)
                }
                guard let bytes = memory.bytes(atGuestAddress: address, count: Int(length)) else {
                    throw .bufferOutsideMemory(head: head, address: address, length: length)
                }
                table = bytes
                tableSize = Int(length / 16)
                index = 0
                visited = 0
                inIndirect = true
                continue
            }
            let writable = flags & Self.writeFlag != 0
            if writable {
                seenWritable = true
            } else if seenWritable {
                throw .readableAfterWritable(head: head)
            }
            guard let bytes = memory.bytes(atGuestAddress: address, count: Int(length)) else {
                throw .bufferOutsideMemory(head: head, address: address, length: length)
            }
            guard chain.append(bytes, writable: writable) else { throw .chainTooLong(head: head, limit: chain.capacity) }
            guard flags & Self.nextFlag != 0 else { return }
            index = next
        }
    }

    /// Returns chain `head` to the guest with `length` bytes written, then
    /// publishes the new `used.idx` (release).
    public mutating func pushUsed(head: UInt16, length: UInt32) {
        let slot = Int(nextUsed & (layout.size - 1))
        used.storeBytes(of: UInt32(head).littleEndian, toByteOffset: 4 + 8 * slot, as: UInt32.self)
        used.storeBytes(of: length.littleEndian, toByteOffset: 8 + 8 * slot, as: UInt32.self)
        nextUsed &+= 1
        UnsafeAtomic<UInt16>(at: Self.word(used, 2)).store(nextUsed.littleEndian, ordering: .releasing)
    }

    /// Whether the driver wants an interrupt for used buffers now (it has
    /// not set VIRTQ_AVAIL_F_NO_INTERRUPT). The full fence orders the
    /// `used.idx` store before this load, as the driver's re-check after
    /// clearing the flag expects.
    public func wantsInterrupt() -> Bool {
        atomicMemoryFence(ordering: .sequentiallyConsistent)
        let flags = UInt16(littleEndian: UnsafeAtomic<UInt16>(at: Self.word(available, 0)).load(ordering: .relaxed))
        return flags & Self.noInterrupt == 0
    }

    /// What serving stopped at.
    public enum ServeOutcome: Equatable, Sendable {
        /// Every published chain was served.
        case drained(served: Int)
        /// `limit` chains were served and more are waiting.
        case more(served: Int)
    }

    /// Serves up to `limit` available chains as request/response pairs: the
    /// readable bytes are copied into `request` (the handler also gets the
    /// chain's full readable length, which may exceed the copy), the handler
    /// writes its response into the buffer it is given (at most the chain's
    /// writable length) and returns its length, which is copied into the
    /// writable buffers and returned as used. The device never sees the ring.
    public mutating func serve(
        memory: some GuestMemory, chain: inout DescriptorChain, request: UnsafeMutableRawBufferPointer,
        response: UnsafeMutableRawBufferPointer, limit: Int,
        _ handler: (_ request: UnsafeRawBufferPointer, _ readableLength: Int, _ response: UnsafeMutableRawBufferPointer) -> Int
    ) throws(VirtqueueError) -> ServeOutcome {
        var served = 0
        while served < limit {
            guard let head = try popAvailable() else { return .drained(served: served) }
            try readChain(head: head, memory: memory, into: &chain)
            let copied = chain.copyReadable(into: request)
            let room = min(chain.writableLength, response.count)
            let produced = handler(
                UnsafeRawBufferPointer(rebasing: request[0..<copied]), chain.readableLength,
                UnsafeMutableRawBufferPointer(rebasing: response[0..<room]))
            let written = chain.writeWritable(UnsafeRawBufferPointer(rebasing: response[0..<min(max(produced, 0), room)]))
            pushUsed(head: head, length: UInt32(written))
            served += 1
        }
        return .more(served: served)
    }
}
