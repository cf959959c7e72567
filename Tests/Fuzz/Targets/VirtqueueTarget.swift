// Split virtqueues (SplitVirtqueue, DescriptorChain) over guest memory the
// guest wrote: descriptor tables, avail and used rings anywhere (aligned or
// not, inside, outside or across the ends of the two memory regions, which
// are adjacent in guest-physical space but not in this process), any queue
// size, any vring base, any avail.idx and used.idx, any descriptor (address,
// length, flags, next: loops, chains crossing a region's end, indirect
// tables, nested or with NEXT), stores between serves; driven as the
// daemon's VhostUserConnection drives them: one queue per ring, rebuilt on
// the same memory with the consumed index (a memory table change), served
// one chain at a time with the SCMI device's limits (8 segments, 512-byte
// request and response copies) and a device that answers any length.
//
// Asserted, against a model written from the virtio 1.x split-ring rules
// (2.7) and docs/scmi.md "What breaks a device", on a copy of guest memory
// taken before each step:
// - building a queue succeeds exactly when its size is a power of two in
//   1...32768 and each area is aligned (16, 2, 4) and wholly inside one
//   region; otherwise it is refused with a reason;
// - each available chain is either refused with a reason — avail.idx more
//   than a queue ahead, a head or next outside its table, more descriptors
//   than the table holds (a loop), more than 8 segments, readable after
//   writable, a buffer (or indirect table) not wholly inside one region,
//   an indirect table without INDIRECT_DESC, nested, with NEXT, or of a
//   length that is 0 or not a multiple of 16 — or walked into exactly the
//   segments the model finds: each inside one region, readable or writable
//   as its flags say, in order; the device sees the readable bytes (as many
//   as the copy holds) and their full length;
// - a refusal writes nothing, and the queue is not used again (the daemon
//   closes the connection);
// - a served chain advances used.idx by one and the consumed index by one,
//   writes exactly one used element (the head and the bytes written, the
//   device's answer cut to the writable length and the copy) and the
//   response into the writable buffers in order; nothing else in guest
//   memory changes; an empty ring writes nothing.
import Glibc
import VCPUFreqVhostUser

enum VirtqueueTarget {
    /// Two regions adjacent in guest-physical space, separate buffers here:
    /// a range that runs from one into the other is not inside one region.
    final class Memory: GuestMemory {
        static let regionSize = 0x4000
        let bases: [UInt64] = [0x4000_0000, 0x4000_4000]
        let buffers: [UnsafeMutableRawBufferPointer]
        var snapshot: [[UInt8]]

        init() {
            buffers = bases.map { _ in .allocate(byteCount: Self.regionSize, alignment: 4096) }
            snapshot = bases.map { _ in Array(repeating: 0, count: Self.regionSize) }
        }

        func clear() { for buffer in buffers { buffer.initializeMemory(as: UInt8.self, repeating: 0) } }

        /// The region and offset of a range wholly inside one region.
        func locate(_ address: UInt64, _ count: Int) -> (region: Int, offset: Int)? {
            guard count >= 0 else { return nil }
            for (index, base) in bases.enumerated() where address >= base && address - base < UInt64(Self.regionSize) {
                let offset = Int(address - base)
                return count <= Self.regionSize - offset ? (index, offset) : nil
            }
            return nil
        }

        func bytes(atGuestAddress address: UInt64, count: Int) -> UnsafeMutableRawBufferPointer? {
            guard let (region, offset) = locate(address, count) else { return nil }
            return UnsafeMutableRawBufferPointer(rebasing: buffers[region][offset..<(offset + count)])
        }

        /// A guest store (dropped where it is not inside memory).
        func store(_ bytes: [UInt8], at address: UInt64) {
            guard let target = self.bytes(atGuestAddress: address, count: bytes.count) else { return }
            for (index, byte) in bytes.enumerated() { target[index] = byte }
        }

        func takeSnapshot() {
            for (index, buffer) in buffers.enumerated() {
                snapshot[index].withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(buffer)) }
            }
        }

        /// Reads from the snapshot (the model's view), nil outside memory.
        func old(_ address: UInt64, _ count: Int) -> [UInt8]? {
            guard let (region, offset) = locate(address, count) else { return nil }
            return Array(snapshot[region][offset..<(offset + count)])
        }

        func oldInteger<T: FixedWidthInteger>(_: T.Type, _ address: UInt64) -> T {
            (old(address, MemoryLayout<T>.size) ?? []).reversed().reduce(T(0)) { $0 << 8 | T($1) }
        }
    }

    nonisolated(unsafe) static let memory = Memory()
    static let maximumSegments = 8
    nonisolated(unsafe) static let request = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
    nonisolated(unsafe) static let response = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)

    /// Places a ring area: usually the standard places of region 0, else
    /// near a region's boundaries or anywhere.
    static func address(_ input: inout FuzzInput, standard: UInt64) -> UInt64 {
        let selector = input.byte()
        switch selector {
        case 0..<200: return standard
        case 200..<240:
            return input.value(near: [0x4000_0000, 0x4000_4000, 0x4000_8000, 0x4000_3FF0, 0x4000_7FF0, 0x4000_2000, 0x4000_0800])
        default: return input.integer()
        }
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        memory.clear()
        let sizeSelector = input.byte()
        let size: UInt16 = sizeSelector < 240 ? UInt16(1) << (sizeSelector % 9) : input.integer()
        let layout = VirtqueueLayout(
            size: size, descriptorTable: address(&input, standard: 0x4000_0000),
            availableRing: address(&input, standard: 0x4000_1000), usedRing: address(&input, standard: 0x4000_1400))
        let indirect = input.bool()
        var consumed: UInt16 = input.byte() < 200 ? 0 : input.integer()
        let bufferArea: [UInt64] = [0x4000_2000, 0x4000_3000, 0x4000_3FF8, 0x4000_4000, 0x4000_6000, 0x4000_7FF0, 0x4000_8000]

        var queue: SplitVirtqueue?
        var chain = DescriptorChain(capacity: maximumSegments)
        var steps = 0
        var ended = false
        while !ended, steps < 192 {
            steps += 1
            if queue == nil {
                // (Re)build on the memory as it is: used.idx is read back from it.
                memory.takeSnapshot()
                let expectedUsed = memory.oldInteger(UInt16.self, layout.usedRing &+ 2)
                let valid = isValid(layout)
                do throws(VirtqueueError) {
                    let built = try SplitVirtqueue(layout: layout, memory: memory, nextAvailable: consumed, indirectDescriptors: indirect)
                    invariant(valid, "a queue of \(layout) was built")
                    invariant(built.nextUsed == expectedUsed, "used.idx read back as \(built.nextUsed), memory has \(expectedUsed)")
                    queue = built
                } catch {
                    invariant(!valid, "a valid queue of \(layout) was refused: \(error)")
                    invariant(!error.description.isEmpty, "a queue refused without a reason")
                    return
                }
            }
            guard !input.isExhausted else { break }
            switch input.byte() % 8 {
            case 0, 1:
                // A descriptor, as a driver writes one (or any values).
                let index = input.byte() < 240 ? UInt16(input.index(below: Int(max(size, 1)))) : input.integer()
                let table = input.byte() < 224 ? layout.descriptorTable : input.element(of: bufferArea)
                let at = table &+ 16 &* UInt64(index)
                var bytes: [UInt8] = []
                let addressValue: UInt64 = input.byte() < 224 ? input.element(of: bufferArea) &+ UInt64(input.byte() & 0xF0) : input.integer()
                withUnsafeBytes(of: addressValue.littleEndian) { bytes += $0 }
                let length: UInt32 = UInt32(truncatingIfNeeded: input.value(near: [0, 8, 16, 32, 128, 512, 0x1000, 0x2000]))
                withUnsafeBytes(of: length.littleEndian) { bytes += $0 }
                let flags = input.byte() < 240 ? UInt16(input.byte() & 0x7) : input.integer()
                withUnsafeBytes(of: flags.littleEndian) { bytes += $0 }
                let next = input.byte() < 240 ? UInt16(input.index(below: Int(max(size, 1)))) : input.integer()
                withUnsafeBytes(of: next.littleEndian) { bytes += $0 }
                memory.store(bytes, at: at)
            case 2:
                // Publish a head: the ring entry, then avail.idx + 1.
                let slot = memory.currentInteger(UInt16.self, layout.availableRing &+ 2)
                let head = input.byte() < 240 ? UInt16(input.index(below: Int(max(size, 1)))) : input.integer()
                let entry = layout.availableRing &+ 4 &+ 2 &* UInt64(slot & (max(size, 1) - 1))
                memory.store(withUnsafeBytes(of: head.littleEndian, Array.init), at: entry)
                memory.store(withUnsafeBytes(of: (slot &+ 1).littleEndian, Array.init), at: layout.availableRing &+ 2)
            case 3:
                // Any store anywhere (avail.idx, used.idx, flags, buffers, tables).
                let target = input.byte() < 128
                    ? input.element(of: [layout.descriptorTable, layout.availableRing, layout.usedRing] + bufferArea) &+ UInt64(input.byte())
                    : input.integer()
                memory.store(Array(input.chunk(maximum: 32)), at: target)
            case 4:
                // The memory table changed: the queue is rebuilt with what was consumed.
                consumed = queue!.nextAvailable
                queue = nil
            default:
                ended = !serve(&queue!, &chain, layout: layout, indirect: indirect, answer: &input)
            }
        }
    }

    /// Serves at most one chain, checked against the model; false when the
    /// queue was refused (the connection closes).
    static func serve(_ queue: inout SplitVirtqueue, _ chain: inout DescriptorChain, layout: VirtqueueLayout, indirect: Bool, answer input: inout FuzzInput) -> Bool {
        memory.takeSnapshot()
        let consumedBefore = queue.nextAvailable, usedBefore = queue.nextUsed
        let expected = walk(layout: layout, consumed: consumedBefore, indirect: indirect)
        let produced = input.byte() < 200 ? Int(input.integer(UInt16.self) % 600) : Int(input.integer(Int32.self))
        let fill = input.byte()
        var seen: (request: [UInt8], length: Int, room: Int)?
        let result = Result { () throws(VirtqueueError) in
            try queue.serve(memory: memory, chain: &chain, request: request, response: response, limit: 1) { bytes, length, out in
                seen = (Array(bytes), length, out.count)
                for index in out.indices { out[index] = fill &+ UInt8(truncatingIfNeeded: index) }
                return produced
            }
        }
        switch (result, expected) {
        case (.failure(let error), .refused(let why)):
            invariant(!error.description.isEmpty, "a chain refused without a reason (model: \(why))")
            invariant(memory.unchanged(), "a refused chain (\(error)) wrote to guest memory")
            return false
        case (.failure(let error), _):
            invariant(false, "refused (\(error)), the model expects \(expected)")
            return false
        case (.success(let outcome), .empty):
            invariant(outcome == .drained(served: 0) && seen == nil, "an empty ring served \(outcome)")
            invariant(memory.unchanged() && queue.nextUsed == usedBefore && queue.nextAvailable == consumedBefore, "an empty ring changed something")
            return true
        case (.success(let outcome), .refused(let why)):
            invariant(false, "served (\(outcome)), the model refuses: \(why)")
            return false
        case (.success(let outcome), .chain(let head, let segments)):
            invariant(outcome == .more(served: 1) || outcome == .drained(served: 1), "one available chain, served \(outcome)")
            invariant(queue.nextAvailable == consumedBefore &+ 1 && queue.nextUsed == usedBefore &+ 1,
                "consumed \(consumedBefore)→\(queue.nextAvailable), used \(usedBefore)→\(queue.nextUsed) for one chain")
            invariant(chain.head == head && chain.segments.count == segments.count, "chain at \(chain.head) of \(chain.segments.count) segments, the model's at \(head) has \(segments.count)")
            for (segment, model) in zip(chain.segments, segments) {
                let expectedPointer = memory.bytes(atGuestAddress: model.address, count: Int(model.length))
                invariant(segment.bytes.baseAddress == expectedPointer?.baseAddress && segment.bytes.count == Int(model.length)
                    && segment.writable == model.writable, "segment \(segment) is not the model's \(model)")
            }
            let readable = segments.filter { !$0.writable }, writable = segments.filter(\.writable)
            var requestBytes: [UInt8] = []
            for segment in readable { requestBytes += memory.old(segment.address, Int(segment.length)) ?? [] }
            let writableLength = writable.reduce(0) { $0 + Int($1.length) }
            let room = min(writableLength, response.count)
            invariant(seen?.request == Array(requestBytes.prefix(request.count)) && seen?.length == requestBytes.count && seen?.room == room,
                "the device saw \(seen.map { "\($0.request.count) bytes of \($0.length), room \($0.room)" } ?? "nothing"), the model \(requestBytes.count) bytes, room \(room)")
            // Guest memory as the model writes it: the answer, then the used element.
            let written = min(max(produced, 0), room)
            var answer = (0..<written).map { fill &+ UInt8(truncatingIfNeeded: $0) }[...]
            // (Written into the snapshot, which the next step takes again.)
            func put(_ bytes: [UInt8], at address: UInt64) {
                guard let (region, offset) = memory.locate(address, bytes.count) else { return }
                memory.snapshot[region].replaceSubrange(offset..<(offset + bytes.count), with: bytes)
            }
            for segment in writable where !answer.isEmpty {
                let part = answer.prefix(Int(segment.length))
                put(Array(part), at: segment.address)
                answer = answer.dropFirst(part.count)
            }
            let slot = UInt64(usedBefore & (layout.size - 1))
            put(withUnsafeBytes(of: UInt32(head).littleEndian, Array.init) + withUnsafeBytes(of: UInt32(written).littleEndian, Array.init),
                at: layout.usedRing + 4 + 8 * slot)
            put(withUnsafeBytes(of: (usedBefore &+ 1).littleEndian, Array.init), at: layout.usedRing + 2)
            for index in memory.buffers.indices {
                guard let at = memory.differs(region: index) else { continue }
                invariant(false, "guest memory differs at 0x\(String(memory.bases[index] + UInt64(at), radix: 16)) after serving head \(head)")
            }
            return true
        }
    }

    struct Segment: CustomStringConvertible {
        var address: UInt64
        var length: UInt32
        var writable: Bool
        var description: String { "0x\(String(address, radix: 16))+\(length)\(writable ? " w" : "")" }
    }

    enum Walk: CustomStringConvertible {
        case empty
        case refused(String)
        case chain(head: UInt16, [Segment])
        var description: String {
            switch self {
            case .empty: return "an empty ring"
            case .refused(let why): return "refused: \(why)"
            case .chain(let head, let segments): return "chain \(head): \(segments)"
            }
        }
    }

    static func isValid(_ layout: VirtqueueLayout) -> Bool {
        let size = Int(layout.size)
        guard size > 0, size <= 32768, size & (size - 1) == 0 else { return false }
        let areas: [(UInt64, Int, UInt64)] = [
            (layout.descriptorTable, 16 * size, 16), (layout.availableRing, 4 + 2 * size, 2), (layout.usedRing, 4 + 8 * size, 4),
        ]
        return areas.allSatisfy { address, count, alignment in address % alignment == 0 && memory.locate(address, count) != nil }
    }

    /// The model: the next available chain as virtio 1.x 2.7 and docs/scmi.md
    /// give it, read from the snapshot.
    static func walk(layout: VirtqueueLayout, consumed: UInt16, indirect: Bool) -> Walk {
        let size = layout.size
        let availableIndex = memory.oldInteger(UInt16.self, layout.availableRing + 2)
        let pending = availableIndex &- consumed
        if pending == 0 { return .empty }
        if pending > size { return .refused("avail.idx \(availableIndex) is \(pending) past \(consumed)") }
        let head = memory.oldInteger(UInt16.self, layout.availableRing + 4 + 2 * UInt64(consumed & (size - 1)))
        var table = layout.descriptorTable, entries = Int(size)
        var index = Int(head), visited = 0, inIndirect = false, writableSeen = false
        var segments: [Segment] = []
        while true {
            guard index < entries else { return .refused("index \(index) outside a table of \(entries)") }
            visited += 1
            guard visited <= entries else { return .refused("more descriptors than the table has") }
            let at = table + 16 * UInt64(index)
            let address = memory.oldInteger(UInt64.self, at), length = memory.oldInteger(UInt32.self, at + 8)
            let flags = memory.oldInteger(UInt16.self, at + 12), next = memory.oldInteger(UInt16.self, at + 14)
            if flags & 4 != 0 {
                guard indirect else { return .refused("indirect without INDIRECT_DESC") }
                guard !inIndirect else { return .refused("nested indirect") }
                guard flags & 1 == 0 else { return .refused("indirect with NEXT") }
                guard length > 0, length % 16 == 0 else { return .refused("indirect table of \(length) bytes") }
                guard memory.locate(address, Int(length)) != nil else { return .refused("indirect table outside memory") }
                table = address
                entries = Int(length / 16)
                index = 0
                visited = 0
                inIndirect = true
                continue
            }
            let writable = flags & 2 != 0
            if writable { writableSeen = true } else if writableSeen { return .refused("readable after writable") }
            guard memory.locate(address, Int(length)) != nil else { return .refused("buffer outside memory") }
            guard segments.count < maximumSegments else { return .refused("more than \(maximumSegments) segments") }
            segments.append(Segment(address: address, length: length, writable: writable))
            guard flags & 1 != 0 else { return .chain(head: head, segments) }
            index = Int(next)
        }
    }

    // MARK: Seeds

    /// Byte streams of the driver's steps, for the seeds.
    struct Script {
        var bytes: [UInt8]
        /// Descriptor `index` of the standard table: address in the buffer area
        /// (`area` an index of bufferArea, plus `offset`), length, flags, next.
        mutating func descriptor(_ index: UInt8, area: UInt8, offset: UInt8, length: UInt32, flags: UInt8, next: UInt8) {
            // op 0; index (selector < 240, index byte); standard table; address selector, area, offset;
            // length as an "any value" (selector < 32), flags (selector, value), next (selector, value).
            bytes += [0, 0, index, 0, 0, area, offset, 0]
            withUnsafeBytes(of: UInt64(length).littleEndian) { bytes += $0 }
            bytes += [0, flags, 0, next]
        }
        mutating func publish(_ head: UInt8) { bytes += [2, 0, head] }
        /// Serve one chain: the device answers `produced` bytes.
        mutating func serve(produced: UInt16) {
            bytes += [5, 0]
            withUnsafeBytes(of: produced.littleEndian) { bytes += $0 }
            bytes += [0x40]
        }
        mutating func store(_ data: [UInt8], area: UInt8, offset: UInt8) { bytes += [3, 0, 3 + area, offset, UInt8(data.count)] + data }
    }

    /// Linux's virtio-scmi traffic on a queue of `size` (the cmdq: a readable
    /// request and a writable response per command, two descriptors each),
    /// with and without INDIRECT_DESC, plus an indirect command.
    static func seeds() -> [FuzzSeed] {
        var seeds: [FuzzSeed] = []
        for (exponent, name) in [(4, "16"), (8, "256")] {
            for indirect in [false, true] {
                // size selector, the three standard addresses, indirect flag, vring base 0.
                var script = Script(bytes: [UInt8(exponent), 0, 0, 0, indirect ? 1 : 0, 0])
                for command in 0..<4 {
                    let first = UInt8(2 * command)
                    // PERFORMANCE_LEVEL_SET (domain 0, level): 12 bytes; a 136-byte response buffer.
                    script.store([0x07, 0x4C, 0, 0, 0, 0, 0, 0, 0x40, 0x0D, 0x03, 0], area: 0, offset: 0x10 * first)
                    script.descriptor(first, area: 0, offset: 0x10 * first, length: 12, flags: 1, next: first + 1)
                    script.descriptor(first + 1, area: 1, offset: 0x10 * first, length: 136, flags: 2, next: 0)
                    script.publish(first)
                    script.serve(produced: 8)
                }
                script.serve(produced: 0)  // drained
                if indirect {
                    // An indirect table of two entries in the buffer area.
                    var table: [UInt8] = []
                    for (address, length, flags) in [(UInt64(0x4000_2000), UInt32(12), UInt16(1)), (UInt64(0x4000_3000), UInt32(136), UInt16(2))] {
                        withUnsafeBytes(of: address.littleEndian) { table += $0 }
                        withUnsafeBytes(of: length.littleEndian) { table += $0 }
                        withUnsafeBytes(of: flags.littleEndian) { table += $0 }
                        table += flags == 1 ? [1, 0] : [0, 0]
                    }
                    script.store(Array(table[0..<16]), area: 0, offset: 0x80)
                    script.store(Array(table[16..<32]), area: 0, offset: 0x90)
                    script.descriptor(10, area: 0, offset: 0x80, length: 32, flags: 4, next: 0)
                    script.publish(10)
                    script.serve(produced: 16)
                }
                seeds.append(FuzzSeed(name: "linux-scmi-cmdq-\(name)\(indirect ? "-indirect" : "")", bytes: script.bytes))
            }
        }
        return seeds
    }
}

extension VirtqueueTarget.Memory {
    /// A little-endian integer of memory as it is now (0 outside memory).
    func currentInteger<T: FixedWidthInteger>(_: T.Type, _ address: UInt64) -> T {
        guard let bytes = bytes(atGuestAddress: address, count: MemoryLayout<T>.size) else { return 0 }
        return T(littleEndian: bytes.loadUnaligned(as: T.self))
    }

    /// Memory equals the snapshot.
    func unchanged() -> Bool { buffers.indices.allSatisfy { differs(region: $0) == nil } }

    /// The first offset of region `index` where memory and snapshot differ.
    func differs(region index: Int) -> Int? {
        let equal = snapshot[index].withUnsafeBytes { memcmp($0.baseAddress!, buffers[index].baseAddress!, Self.regionSize) == 0 }
        guard !equal else { return nil }
        return zip(buffers[index], snapshot[index]).enumerated().first { $0.element.0 != $0.element.1 }?.offset
    }
}
