import Atomics

/// The driver (guest) side of one split virtqueue over guest memory: what a
/// guest's virtio driver does to hand buffers to a device. The daemon never
/// uses it; the tests, the benchmark and fuzzers play the guest with it.
/// It writes only what it is told to, so a test can also write rings no
/// correct driver would (`setDescriptor`, `publish` of any head).
///
/// Ordering as the virtio spec asks of a driver: descriptors and the ring
/// entry are written before `avail.idx` is stored with release; `used.idx`
/// is loaded with acquire before the used element is read. Nothing
/// allocates after `init`.
public struct VirtqueueDriver {
    public let layout: VirtqueueLayout
    private let descriptors: UnsafeMutableRawBufferPointer
    private let available: UnsafeMutableRawBufferPointer
    private let used: UnsafeMutableRawBufferPointer
    /// The next `avail.ring` slot this driver fills (`avail.idx` as published).
    public private(set) var availableIndex: UInt16 = 0
    /// The next used element this driver reads.
    public private(set) var usedIndex: UInt16 = 0

    /// `VIRTQ_DESC_F_NEXT`, `_WRITE`, `_INDIRECT`.
    public static let nextFlag: UInt16 = 1, writeFlag: UInt16 = 2, indirectFlag: UInt16 = 4

    /// Resolves the three areas in `memory` (wholly inside it, aligned as the
    /// split ring requires) and zeroes them: a fresh ring.
    public init(layout: VirtqueueLayout, memory: some GuestMemory) throws(VirtqueueError) {
        func area(_ name: String, _ address: UInt64, _ count: Int, alignment: UInt64) throws(VirtqueueError) -> UnsafeMutableRawBufferPointer {
            guard address % alignment == 0 else { throw .misaligned(ring: name, address: address) }
            guard let bytes = memory.bytes(atGuestAddress: address, count: count) else {
                throw .ringOutsideMemory(ring: name, address: address, byteCount: count)
            }
            return bytes
        }
        let size = Int(layout.size)
        guard size > 0, size <= Int(VhostUserLimits.maximumQueueSize), size & (size - 1) == 0 else { throw .badSize(UInt32(layout.size)) }
        descriptors = try area("descriptor table", layout.descriptorTable, layout.descriptorTableBytes, alignment: 16)
        available = try area("available ring", layout.availableRing, layout.availableRingBytes, alignment: 2)
        used = try area("used ring", layout.usedRing, layout.usedRingBytes, alignment: 4)
        self.layout = layout
        for area in [descriptors, available, used] { area.initializeMemory(as: UInt8.self, repeating: 0) }
    }

    private static func word(_ area: UnsafeMutableRawBufferPointer, _ offset: Int) -> UnsafeAtomic<UInt16> {
        UnsafeAtomic(at: (area.baseAddress! + offset).assumingMemoryBound(to: UInt16.AtomicRepresentation.self))
    }

    /// Writes descriptor `index` (any values: a test may break the ring).
    public func setDescriptor(_ index: UInt16, address: UInt64, length: UInt32, flags: UInt16, next: UInt16) {
        let offset = 16 * Int(index & (layout.size - 1))
        descriptors.storeBytes(of: address.littleEndian, toByteOffset: offset, as: UInt64.self)
        descriptors.storeBytes(of: length.littleEndian, toByteOffset: offset + 8, as: UInt32.self)
        descriptors.storeBytes(of: flags.littleEndian, toByteOffset: offset + 12, as: UInt16.self)
        descriptors.storeBytes(of: next.littleEndian, toByteOffset: offset + 14, as: UInt16.self)
    }

    /// A virtio-scmi command as Linux adds it: descriptor `first` readable
    /// (the request), chained to `first + 1` writable (the response).
    public func setRequestChain(first: UInt16, request: UInt64, requestLength: UInt32, response: UInt64, responseLength: UInt32) {
        setDescriptor(first, address: request, length: requestLength, flags: Self.nextFlag, next: first &+ 1)
        setDescriptor(first &+ 1, address: response, length: responseLength, flags: Self.writeFlag, next: 0)
    }

    /// Puts `head` in the next avail slot, then publishes the new `avail.idx` (release).
    public mutating func publish(_ head: UInt16) {
        let slot = Int(availableIndex & (layout.size - 1))
        available.storeBytes(of: head.littleEndian, toByteOffset: 4 + 2 * slot, as: UInt16.self)
        availableIndex &+= 1
        Self.word(available, 2).store(availableIndex.littleEndian, ordering: .releasing)
    }

    /// Stores any `avail.idx` (a broken driver's), without a ring entry.
    public mutating func setAvailableIndex(_ index: UInt16) {
        availableIndex = index
        Self.word(available, 2).store(index.littleEndian, ordering: .releasing)
    }

    /// The next used element (head id and bytes written), nil when the device
    /// has returned nothing new.
    public mutating func popUsed() -> (id: UInt32, length: UInt32)? {
        let published = UInt16(littleEndian: Self.word(used, 2).load(ordering: .acquiring))
        guard published != usedIndex else { return nil }
        let slot = Int(usedIndex & (layout.size - 1))
        usedIndex &+= 1
        return (
            UInt32(littleEndian: used.loadUnaligned(fromByteOffset: 4 + 8 * slot, as: UInt32.self)),
            UInt32(littleEndian: used.loadUnaligned(fromByteOffset: 8 + 8 * slot, as: UInt32.self))
        )
    }

    /// Sets or clears VIRTQ_AVAIL_F_NO_INTERRUPT (the driver does not want
    /// to be interrupted for used buffers).
    public func setNoInterrupt(_ on: Bool) {
        Self.word(available, 0).store(UInt16(on ? 1 : 0).littleEndian, ordering: .relaxed)
    }
}
