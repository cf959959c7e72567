import Testing
import VCPUFreqVhostUser

/// The split virtqueue against a fake guest: well-formed chains are served
/// in order with the right used lengths; every malformed ring or chain is
/// the right `VirtqueueError`, never a crash or an out-of-memory access.
@Suite struct VirtqueueTests {
    func queue(_ driver: FakeDriver, indirect: Bool = true) throws -> SplitVirtqueue {
        try SplitVirtqueue(layout: driver.layout, memory: driver.memory, nextAvailable: 0, indirectDescriptors: indirect)
    }

    @Test func servesChainsInOrderAndReturnsUsedLengths() throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory)
        let first = driver.addRequest([1, 2, 3, 4], responseRoom: 16, first: 0)
        let second = driver.addRequest([9, 8, 7], responseRoom: 2, first: 2)
        var q = try queue(driver)
        let (outcome, seen) = try serveEcho(&q, memory: memory)
        #expect(outcome == .drained(served: 2))
        #expect(seen == [[1, 2, 3, 4], [9, 8, 7]])
        #expect(driver.usedIndex == 2)
        #expect(driver.used(0).id == UInt32(first.head) && driver.used(0).length == 4)
        #expect(driver.used(1).id == UInt32(second.head) && driver.used(1).length == 2)  // the room the guest gave
        #expect(memory.read(4, at: first.response) == [4, 3, 2, 1])
        #expect(memory.read(2, at: second.response) == [7, 8])
        #expect(q.nextAvailable == 2 && q.nextUsed == 2)
        // Nothing new: nothing served.
        #expect(try serveEcho(&q, memory: memory).0 == .drained(served: 0))
    }

    @Test func scatterAndGatherAcrossSeveralBuffers() throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory)
        let a = driver.buffer([1, 2]), b = driver.buffer([3, 4, 5])
        let r1 = driver.buffer([], count: 2), r2 = driver.buffer([], count: 8)
        driver.setDescriptor(5, .init(address: a, length: 2, flags: FakeDriver.next, next: 3))
        driver.setDescriptor(3, .init(address: b, length: 3, flags: FakeDriver.next, next: 7))
        driver.setDescriptor(7, .init(address: r1, length: 2, flags: FakeDriver.write | FakeDriver.next, next: 1))
        driver.setDescriptor(1, .init(address: r2, length: 8, flags: FakeDriver.write, next: 0))
        driver.publish(5)
        var q = try queue(driver)
        let (_, seen) = try serveEcho(&q, memory: memory)
        #expect(seen == [[1, 2, 3, 4, 5]])
        #expect(memory.read(2, at: r1) == [5, 4])
        #expect(memory.read(3, at: r2) == [3, 2, 1])
        #expect(driver.used(0).length == 5)
    }

    /// Empty buffers (length 0) anywhere in a chain: the bytes of the next
    /// buffers still follow, in both directions (found by the virtqueue fuzz
    /// target: the copy stopped at the first empty buffer).
    @Test(arguments: [
        // (readable lengths, writable lengths) with the request 1...5 and a 5-byte echo
        ([0, 5], [8]), ([2, 0, 3], [8]), ([5, 0], [8]), ([5], [0, 8]), ([5], [2, 0, 3]), ([0, 2, 0, 3], [0, 1, 4]),
    ])
    func emptyBuffersDoNotEndTheChain(readable: [Int], writable: [Int]) throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory)
        var request: [UInt8] = [1, 2, 3, 4, 5]
        var index = 0
        var responses: [(UInt64, Int)] = []
        let lengths = readable.map { ($0, false) } + writable.map { ($0, true) }
        for (position, (length, isWritable)) in lengths.enumerated() {
            let address: UInt64
            if isWritable {
                address = driver.buffer([], count: max(length, 1))
                responses.append((address, length))
            } else {
                address = driver.buffer(Array(request.prefix(length)))
                request.removeFirst(length)
            }
            let last = position == lengths.count - 1
            driver.setDescriptor(index, .init(
                address: address, length: UInt32(length), flags: (isWritable ? FakeDriver.write : 0) | (last ? 0 : FakeDriver.next),
                next: UInt16(index + 1)))
            index += 1
        }
        driver.publish(0)
        var q = try queue(driver)
        let (_, seen) = try serveEcho(&q, memory: memory)
        #expect(seen == [[1, 2, 3, 4, 5]])
        #expect(driver.used(0).length == 5)
        let echoed = responses.flatMap { memory.read($0.1, at: $0.0) }
        #expect(echoed.prefix(5) == [5, 4, 3, 2, 1])
    }

    @Test func indirectTableIsServedWhenNegotiated() throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory)
        let table = driver.buffer([], count: 32)
        let request = driver.buffer([0xAA, 0xBB]), response = driver.buffer([], count: 4)
        driver.setDescriptor(0, .init(address: request, length: 2, flags: FakeDriver.next, next: 1), table: table)
        driver.setDescriptor(1, .init(address: response, length: 4, flags: FakeDriver.write, next: 0), table: table)
        driver.setDescriptor(4, .init(address: table, length: 32, flags: FakeDriver.indirect, next: 0))
        driver.publish(4)
        var q = try queue(driver)
        let (_, seen) = try serveEcho(&q, memory: memory)
        #expect(seen == [[0xAA, 0xBB]])
        #expect(memory.read(2, at: response) == [0xBB, 0xAA])
        #expect(driver.used(0).id == 4 && driver.used(0).length == 2)
    }

    /// Each malformed chain, published alone on a fresh queue.
    enum Broken: String, CaseIterable {
        case headOutOfRange, nextOutOfRange, loop, tooLong, readableAfterWritable, bufferOutsideMemory, lengthOverflow
        case indirectNotNegotiated, nestedIndirect, indirectWithNext, indirectLengthZero, indirectLengthOdd, indirectOutsideMemory
        case indirectNextOutOfRange, indirectLoop, availableIndexJump
    }

    @Test(arguments: Broken.allCases)
    func malformedChainsAreTheRightError(_ broken: Broken) throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory)
        let ok = driver.buffer([1, 2, 3, 4], count: 64)
        let table = driver.buffer([], count: 64)
        var indirect = true
        let expected: VirtqueueError
        switch broken {
        case .headOutOfRange:
            driver.publish(16)
            expected = .indexOutOfRange(index: 16, tableSize: 16)
        case .nextOutOfRange:
            driver.setDescriptor(0, .init(address: ok, length: 4, flags: FakeDriver.next, next: 40))
            driver.publish(0)
            expected = .indexOutOfRange(index: 40, tableSize: 16)
        case .loop:
            driver.setDescriptor(0, .init(address: ok, length: 4, flags: FakeDriver.next, next: 1))
            driver.setDescriptor(1, .init(address: ok, length: 4, flags: FakeDriver.next, next: 0))
            driver.publish(0)
            expected = .chainTooLong(head: 0, limit: 8)  // the segment limit stops a loop before the visit count
        case .tooLong:
            for i in 0..<9 { driver.setDescriptor(i, .init(address: ok, length: 4, flags: FakeDriver.next, next: UInt16(i + 1))) }
            driver.setDescriptor(9, .init(address: ok, length: 4, flags: 0, next: 0))
            driver.publish(0)
            expected = .chainTooLong(head: 0, limit: 8)
        case .readableAfterWritable:
            driver.setDescriptor(0, .init(address: ok, length: 4, flags: FakeDriver.next | FakeDriver.write, next: 1))
            driver.setDescriptor(1, .init(address: ok, length: 4, flags: 0, next: 0))
            driver.publish(0)
            expected = .readableAfterWritable(head: 0)
        case .bufferOutsideMemory:
            driver.setDescriptor(0, .init(address: 0x1000, length: 4, flags: 0, next: 0))
            driver.publish(0)
            expected = .bufferOutsideMemory(head: 0, address: 0x1000, length: 4)
        case .lengthOverflow:
            let end = memory.base + UInt64(memory.buffer.count) - 2
            driver.setDescriptor(0, .init(address: end, length: 4, flags: 0, next: 0))
            driver.publish(0)
            expected = .bufferOutsideMemory(head: 0, address: end, length: 4)
        case .indirectNotNegotiated:
            indirect = false
            driver.setDescriptor(0, .init(address: table, length: 16, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .indirectNotNegotiated(head: 0)
        case .nestedIndirect:
            driver.setDescriptor(0, .init(address: table, length: 16, flags: FakeDriver.indirect, next: 0), table: table)
            driver.setDescriptor(0, .init(address: table, length: 16, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .nestedIndirect(head: 0)
        case .indirectWithNext:
            driver.setDescriptor(0, .init(address: table, length: 16, flags: FakeDriver.indirect | FakeDriver.next, next: 1))
            driver.publish(0)
            expected = .indirectWithNext(head: 0)
        case .indirectLengthZero:
            driver.setDescriptor(0, .init(address: table, length: 0, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .badIndirectLength(head: 0, length: 0)
        case .indirectLengthOdd:
            driver.setDescriptor(0, .init(address: table, length: 24, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .badIndirectLength(head: 0, length: 24)
        case .indirectOutsideMemory:
            driver.setDescriptor(0, .init(address: 0x10, length: 32, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .bufferOutsideMemory(head: 0, address: 0x10, length: 32)
        case .indirectNextOutOfRange:
            driver.setDescriptor(0, .init(address: ok, length: 4, flags: FakeDriver.next, next: 2), table: table)
            driver.setDescriptor(0, .init(address: table, length: 32, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .indexOutOfRange(index: 2, tableSize: 2)
        case .indirectLoop:
            driver.setDescriptor(0, .init(address: ok, length: 0, flags: FakeDriver.next, next: 1), table: table)
            driver.setDescriptor(1, .init(address: ok, length: 0, flags: FakeDriver.next, next: 0), table: table)
            driver.setDescriptor(0, .init(address: table, length: 32, flags: FakeDriver.indirect, next: 0))
            driver.publish(0)
            expected = .loop(head: 0)
        case .availableIndexJump:
            memory.store(UInt16(17), at: driver.layout.availableRing + 2)
            expected = .availableIndexJump(availableIndex: 17, consumed: 0, size: 16)
        }
        var q = try queue(driver, indirect: indirect)
        // A loop of zero-length descriptors has room in the chain: only the visit count stops it.
        let capacity = broken == .indirectLoop ? 64 : 8
        #expect(throws: expected) { try serveEcho(&q, memory: memory, chainCapacity: capacity) }
        #expect(driver.usedIndex == 0, "a broken chain is never returned as used")
    }

    @Test func loopIsCaughtByTheVisitCountWhenSegmentsAreRoomy() throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory, size: 4)
        let ok = driver.buffer([1], count: 16)
        driver.setDescriptor(0, .init(address: ok, length: 1, flags: FakeDriver.next, next: 1))
        driver.setDescriptor(1, .init(address: ok, length: 1, flags: FakeDriver.next, next: 0))
        driver.publish(0)
        var q = try queue(driver)
        #expect(throws: VirtqueueError.loop(head: 0)) { try serveEcho(&q, memory: memory, chainCapacity: 64) }
    }

    @Test func ringsMustBeAlignedSizedAndInsideMemory() {
        let memory = FakeGuestMemory()
        let base = memory.base
        func build(_ layout: VirtqueueLayout) -> VirtqueueError? {
            do {
                _ = try SplitVirtqueue(layout: layout, memory: memory, nextAvailable: 0, indirectDescriptors: false)
                return nil
            } catch { return error }
        }
        #expect(build(.init(size: 3, descriptorTable: base, availableRing: base + 0x1000, usedRing: base + 0x2000)) == .badSize(3))
        #expect(build(.init(size: 0, descriptorTable: base, availableRing: base + 0x1000, usedRing: base + 0x2000)) == .badSize(0))
        #expect(build(.init(size: 8, descriptorTable: base + 8, availableRing: base + 0x1000, usedRing: base + 0x2000))
            == .misaligned(ring: "descriptor table", address: base + 8))
        #expect(build(.init(size: 8, descriptorTable: base, availableRing: base + 0x1001, usedRing: base + 0x2000))
            == .misaligned(ring: "available ring", address: base + 0x1001))
        #expect(build(.init(size: 8, descriptorTable: base, availableRing: base + 0x1000, usedRing: base + 0x2002))
            == .misaligned(ring: "used ring", address: base + 0x2002))
        let end = base + UInt64(memory.buffer.count)
        #expect(build(.init(size: 8, descriptorTable: base, availableRing: base + 0x1000, usedRing: end - 16))
            == .ringOutsideMemory(ring: "used ring", address: end - 16, byteCount: 68))
        #expect(build(.init(size: 8, descriptorTable: 0, availableRing: base + 0x1000, usedRing: base + 0x2000))
            == .ringOutsideMemory(ring: "descriptor table", address: 0, byteCount: 128))
        #expect(build(.init(size: 8, descriptorTable: base, availableRing: base + 0x1000, usedRing: base + 0x2000)) == nil)
    }

    @Test func limitLeavesTheRestForTheNextTurnAndIndicesWrap() throws {
        let memory = FakeGuestMemory()
        var driver = FakeDriver(memory: memory, size: 4)
        // Start near the 16-bit wrap: the driver and the device both count modulo 2^16.
        driver.availableIndex = 0xFFFE
        memory.store(UInt16(0xFFFE), at: driver.layout.usedRing + 2)
        var q = try SplitVirtqueue(layout: driver.layout, memory: memory, nextAvailable: 0xFFFE, indirectDescriptors: false)
        for _ in 0..<3 { _ = driver.addRequest([7], responseRoom: 4, first: 0) }
        let (first, _) = try serveEcho(&q, memory: memory, limit: 2)
        #expect(first == .more(served: 2))
        let (second, _) = try serveEcho(&q, memory: memory, limit: 2)
        #expect(second == .drained(served: 1))
        #expect(driver.usedIndex == 1 && q.nextAvailable == 1)
    }

    @Test func interruptSuppressionFlagIsHonoured() throws {
        let memory = FakeGuestMemory()
        let driver = FakeDriver(memory: memory)
        let q = try queue(driver)
        #expect(q.wantsInterrupt())
        driver.setNoInterrupt(true)
        #expect(!q.wantsInterrupt())
    }

    /// Random bytes as descriptor table, avail ring and buffers: serving
    /// either works or throws; it never traps or touches memory outside the
    /// fake (the fake's bounds are the only memory it can reach).
    @Test func randomRingsNeverCrash() throws {
        var generator = SplitMix(seed: 0x5c31)
        for _ in 0..<2000 {
            let memory = FakeGuestMemory(size: 0x20000)
            for offset in stride(from: 0, to: 0x9000, by: 8) {
                memory.buffer.storeBytes(of: generator.next(), toByteOffset: offset, as: UInt64.self)
            }
            // Some descriptors point into memory, so chains get past the first check.
            for index in 0..<16 where generator.next() % 2 == 0 {
                memory.store(memory.base + 0x10000 + generator.next() % 0x1000, at: memory.base + UInt64(16 * index))
                memory.store(UInt32(generator.next() % 300), at: memory.base + UInt64(16 * index) + 8)
            }
            let layout = VirtqueueLayout(size: 16, descriptorTable: memory.base, availableRing: memory.base + 0x4000, usedRing: memory.base + 0x8000)
            guard var q = try? SplitVirtqueue(layout: layout, memory: memory, nextAvailable: 0, indirectDescriptors: true) else { continue }
            _ = try? serveEcho(&q, memory: memory, limit: 32)
        }
    }
}

/// A small deterministic generator (tests must be reproducible).
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The driver side used by the tests and the benchmark against the device side.
@Suite struct VirtqueueDriverTests {
    @Test func driverAndDeviceAgree() throws {
        let memory = FakeGuestMemory()
        let layout = VirtqueueLayout(size: 8, descriptorTable: memory.base, availableRing: memory.base + 0x100, usedRing: memory.base + 0x200)
        var driver = try VirtqueueDriver(layout: layout, memory: memory)
        var device = try SplitVirtqueue(layout: layout, memory: memory, nextAvailable: 0, indirectDescriptors: false)
        #expect(driver.popUsed() == nil)
        for round in 0..<20 {  // wraps the 8-entry rings and the u16 indices' low bits
            let request = memory.base + 0x1000, response = memory.base + 0x2000
            memory.write([UInt8(round), 1, 2], at: request)
            let first = UInt16(2 * (round % 4))
            driver.setRequestChain(first: first, request: request, requestLength: 3, response: response, responseLength: 16)
            driver.publish(first)
            let (outcome, seen) = try serveEcho(&device, memory: memory)
            #expect(outcome == .drained(served: 1) && seen == [[UInt8(round), 1, 2]])
            let popped = driver.popUsed()
            let used = try #require(popped)
            #expect(used.id == UInt32(first) && used.length == 3)
            #expect(memory.read(3, at: response) == [2, 1, UInt8(round)])
            #expect(driver.popUsed() == nil)
        }
        #expect(throws: VirtqueueError.misaligned(ring: "descriptor table", address: memory.base + 8)) {
            try VirtqueueDriver(layout: VirtqueueLayout(size: 8, descriptorTable: memory.base + 8, availableRing: memory.base + 0x100, usedRing: memory.base + 0x200), memory: memory)
        }
    }
}
