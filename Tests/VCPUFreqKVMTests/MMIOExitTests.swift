import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// Every guest load or store to unbacked space is one exit to the handler,
/// with the address, width and value the guest used.
@Suite(requiresKVM) struct MMIOExitTests {
    static let widths = AccessWidth.allCases
    static let counts: [UInt32] = [1, 37]

    @Test(arguments: widths, counts)
    func writesExitOncePerStoreWithAddressWidthAndValue(width: AccessWidth, count: UInt32) throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let address = upstreamRegister(.setPerf)
        let value: UInt64 = 0x1122_3344_5566_7788
        let run = try vm.vcpus[0].run(script: [.write(address: address, width: width, value: value, count: count)])

        #expect(run.exits.mmioWrites == UInt64(count))
        #expect(run.exits.total == UInt64(count))
        #expect(run.exits[.mmio] == UInt64(count))
        #expect(run.results == [GuestOpResult(value: UInt64(count), aux: 0)])
        let expected = Access(vcpu: 0, gpa: address, width: width.rawValue, value: value & mask(width), isWrite: true)
        #expect(handler.accesses == Array(repeating: expected, count: Int(count)))
    }

    @Test(arguments: widths, counts)
    func readsExitOncePerLoadAndReturnTheHandlersValue(width: AccessWidth, count: UInt32) throws {
        // A different value for every read, with bits in all eight bytes.
        let value: @Sendable (Int, UInt64) -> UInt64 = { n, _ in 0xDEAD_BEEF_0000_0000 &+ UInt64(n) &* 0x0101_0101 }
        let handler = RecordingHandler(readValue: value)
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let address = upstreamRegister(.curPerf)
        let run = try vm.vcpus[0].run(script: [.read(address: address, width: width, count: count)])

        #expect(run.exits.mmioReads == UInt64(count))
        #expect(run.exits.total == UInt64(count))
        let seen = (0..<Int(count)).map { value($0, address) & mask(width) }
        #expect(run.results == [GuestOpResult(value: seen.last!, aux: seen.reduce(0, &+))])
        let expected = Access(vcpu: 0, gpa: address, width: width.rawValue, value: 0, isWrite: false)
        #expect(handler.accesses == Array(repeating: expected, count: Int(count)))
    }

    @Test func aReadOfTheUpstreamTableSequenceReachesTheHandlerInOrder() throws {
        // The driver's probe: read perftbl_len, then write sel / read rd per entry.
        let table: [UInt64] = [2_000_000, 1_500_000, 1_000_000]
        let handler = RecordingHandler { _, gpa in
            gpa == upstreamRegister(.perftblLen) ? UInt64(table.count) : 0
        }
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        var script: GuestScript = [.read32(upstreamRegister(.perftblLen))]
        for index in table.indices {
            script.append(.write32(upstreamRegister(.perftblSel), value: UInt32(index)))
            script.append(.read32(upstreamRegister(.perftblRd)))
        }
        let run = try vm.vcpus[0].run(script: script)
        #expect(run.results[0].lastValue == UInt64(table.count))
        #expect(run.exits.mmioReads == 4 && run.exits.mmioWrites == 3)
        let order = handler.accesses.map { ($0.isWrite ? "W" : "R") + String($0.gpa - deviceMap.base, radix: 16) }
        #expect(order == ["R8", "Wc", "R10", "Wc", "R10", "Wc", "R10"])
        #expect(handler.accesses.filter(\.isWrite).map(\.value) == [0, 1, 2])
    }

    @Test(arguments: [AccessWidth.byte, .word16, .word32])
    func portIOExitsAsIOWithPortWidthAndValue(width: AccessWidth) throws {
        let handler = RecordingHandler { n, _ in 0xA5A5_A5A5 &+ UInt64(n) }
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let run = try vm.vcpus[0].run(script: [
            .portWrite(port: 0x510, width: width, value: 0x1234_5678, count: 3),
            .portRead(port: 0x511, width: width, count: 2),
        ])
        #expect(run.exits.io == 5 && run.exits[.io] == 5)
        #expect(run.exits.mmioReads + run.exits.mmioWrites == 0)
        let written = Access(
            vcpu: 0, gpa: 0x510, width: width.rawValue, value: 0x1234_5678 & mask(width), isWrite: true, isPort: true)
        let read = Access(vcpu: 0, gpa: 0x511, width: width.rawValue, value: 0, isWrite: false, isPort: true)
        #expect(handler.accesses == [written, written, written, read, read])
        let values = [0xA5A5_A5A5 & mask(width), 0xA5A5_A5A6 & mask(width)]
        #expect(run.results[1] == GuestOpResult(value: values[1], aux: values[0] &+ values[1]))
    }

    @Test func spinAndRAMAccessesNeverExit() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let scratch = vm.layout.scratch.lowerBound
        let run = try vm.vcpus[0].run(script: [
            .spin(iterations: 1_000_000),
            .write(address: scratch, width: .word64, value: 0x0123_4567_89AB_CDEF, count: 1000),
            .read(address: scratch, width: .word64, count: 10),
            .read(address: scratch + 4, width: .word32, count: 1),
        ])
        #expect(run.exits.total == 0)
        #expect(run.results[0].count == 1_000_000)
        #expect(run.results[2] == GuestOpResult(value: 0x0123_4567_89AB_CDEF, aux: 0x0123_4567_89AB_CDEF &* 10))
        #expect(run.results[3].lastValue == 0x0123_4567)
        #expect(vm.ram.load64(at: Int(scratch)) == 0x0123_4567_89AB_CDEF)
    }
}
