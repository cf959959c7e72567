import VCPUFreqVhostUser

/// Guest RAM for tests: one zeroed buffer at a guest-physical base, with a
/// driver-side view (what the guest's virtio driver writes).
final class FakeGuestMemory: GuestMemory {
    let base: UInt64
    let buffer: UnsafeMutableRawBufferPointer

    init(base: UInt64 = 0x4000_0000, size: Int = 1 << 20) {
        self.base = base
        buffer = .allocate(byteCount: size, alignment: 4096)
        buffer.initializeMemory(as: UInt8.self, repeating: 0)
    }

    deinit { buffer.deallocate() }

    func bytes(atGuestAddress address: UInt64, count: Int) -> UnsafeMutableRawBufferPointer? {
        guard count >= 0, address >= base else { return nil }
        let offset = address - base
        guard offset <= UInt64(buffer.count), UInt64(count) <= UInt64(buffer.count) - offset else { return nil }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[Int(offset)..<(Int(offset) + count)])
    }

    func store<T: FixedWidthInteger>(_ value: T, at address: UInt64) {
        bytes(atGuestAddress: address, count: MemoryLayout<T>.size)!.storeBytes(of: value.littleEndian, as: T.self)
    }

    func load<T: FixedWidthInteger>(_: T.Type, at address: UInt64) -> T {
        T(littleEndian: bytes(atGuestAddress: address, count: MemoryLayout<T>.size)!.loadUnaligned(as: T.self))
    }

    func write(_ data: [UInt8], at address: UInt64) {
        let target = bytes(atGuestAddress: address, count: data.count)!
        for (index, byte) in data.enumerated() { target[index] = byte }
    }

    func read(_ count: Int, at address: UInt64) -> [UInt8] { Array(bytes(atGuestAddress: address, count: count)!) }
}

/// The guest driver's side of one split virtqueue in `FakeGuestMemory`:
/// writes descriptors, publishes heads, reads used elements. Layout: the
/// descriptor table, avail ring and used ring at fixed offsets from `base`,
/// buffers from `base + 0x10000`.
struct FakeDriver {
    let memory: FakeGuestMemory
    let layout: VirtqueueLayout
    var availableIndex: UInt16 = 0
    var nextBuffer: UInt64

    init(memory: FakeGuestMemory, size: UInt16 = 16) {
        self.memory = memory
        let base = memory.base
        layout = VirtqueueLayout(size: size, descriptorTable: base, availableRing: base + 0x4000, usedRing: base + 0x8000)
        nextBuffer = base + 0x10000
    }

    struct Descriptor {
        var address: UInt64
        var length: UInt32
        var flags: UInt16
        var next: UInt16
    }

    static let next: UInt16 = 1, write: UInt16 = 2, indirect: UInt16 = 4

    func setDescriptor(_ index: Int, _ d: Descriptor, table: UInt64? = nil) {
        let at = (table ?? layout.descriptorTable) + UInt64(16 * index)
        memory.store(d.address, at: at)
        memory.store(d.length, at: at + 8)
        memory.store(d.flags, at: at + 12)
        memory.store(d.next, at: at + 14)
    }

    /// A fresh buffer of `count` bytes holding `contents`.
    mutating func buffer(_ contents: [UInt8], count: Int? = nil) -> UInt64 {
        let address = nextBuffer
        let size = max(count ?? contents.count, contents.count)
        nextBuffer += UInt64((size + 15) & ~15) + 16
        memory.write(contents, at: address)
        return address
    }

    /// Publishes `head` in the next avail slot.
    mutating func publish(_ head: UInt16) {
        memory.store(head, at: layout.availableRing + 4 + UInt64(2 * Int(availableIndex & (layout.size - 1))))
        availableIndex &+= 1
        memory.store(availableIndex, at: layout.availableRing + 2)
    }

    /// A request/response chain at descriptors (first, first + 1).
    mutating func addRequest(_ request: [UInt8], responseRoom: Int, first: Int = 0) -> (head: UInt16, response: UInt64) {
        let requestAddress = buffer(request)
        let responseAddress = buffer([], count: responseRoom)
        setDescriptor(first, Descriptor(address: requestAddress, length: UInt32(request.count), flags: Self.next, next: UInt16(first + 1)))
        setDescriptor(first + 1, Descriptor(address: responseAddress, length: UInt32(responseRoom), flags: Self.write, next: 0))
        publish(UInt16(first))
        return (UInt16(first), responseAddress)
    }

    var usedIndex: UInt16 { memory.load(UInt16.self, at: layout.usedRing + 2) }

    func used(_ slot: Int) -> (id: UInt32, length: UInt32) {
        let at = layout.usedRing + 4 + UInt64(8 * (slot & Int(layout.size - 1)))
        return (memory.load(UInt32.self, at: at), memory.load(UInt32.self, at: at + 4))
    }

    func setNoInterrupt(_ on: Bool) { memory.store(UInt16(on ? 1 : 0), at: layout.availableRing) }
}

/// Serves with an echo device: the response is the request's bytes reversed
/// (as many as fit); records what the device saw.
func serveEcho(
    _ queue: inout SplitVirtqueue, memory: FakeGuestMemory, chainCapacity: Int = 8, limit: Int = 64
) throws(VirtqueueError) -> (SplitVirtqueue.ServeOutcome, [[UInt8]]) {
    var chain = DescriptorChain(capacity: chainCapacity)
    let request = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    let response = UnsafeMutableRawBufferPointer.allocate(byteCount: 256, alignment: 8)
    defer {
        request.deallocate()
        response.deallocate()
    }
    var seen: [[UInt8]] = []
    let outcome = try queue.serve(memory: memory, chain: &chain, request: request, response: response, limit: limit) { bytes, length, out in
        seen.append(Array(bytes))
        let reply = Array(bytes.reversed().prefix(out.count))
        for (index, byte) in reply.enumerated() { out[index] = byte }
        return reply.count
    }
    return (outcome, seen)
}
