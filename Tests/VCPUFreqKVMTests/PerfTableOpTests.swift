import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux

/// A register window with a table: perftbl_len answers `table.count` (or
/// `reportedLength` when set), perftbl_rd answers the entry at the last
/// perftbl_sel written (0 out of range), and every access is logged.
private final class TableWindow: MMIOHandler {
    let table: [UInt32]
    let reportedLength: UInt32
    private let state = AnnotatedMutex<(selection: UInt64, log: [String])>((0, []))

    init(table: [UInt32], reportedLength: UInt32? = nil) {
        self.table = table
        self.reportedLength = reportedLength ?? UInt32(table.count)
    }

    var log: [String] { state.withLock { $0.log } }

    func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64 {
        state.withLock { state in
            state.log.append("R\(String(gpa - deviceMap.base, radix: 16))")
            switch gpa {
            case upstreamRegister(.perftblLen): return UInt64(reportedLength)
            case upstreamRegister(.perftblRd):
                return state.selection < UInt64(table.count) ? UInt64(table[Int(state.selection)]) : 0
            default: return 0
            }
        }
    }

    func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64) {
        state.withLock { state in
            state.log.append("W\(String(gpa - deviceMap.base, radix: 16))=\(value)")
            if gpa == upstreamRegister(.perftblSel) { state.selection = value }
        }
    }
}

/// The PERFTABLE op is the driver's table build: the length comes from the
/// device, one sel write and one rd read per entry, entries stored in RAM.
@Suite(requiresKVM) struct PerfTableOpTests {
    /// Tables of 1 (max-only), 3 and 64 (the driver's limit) entries.
    static let tables: [[UInt32]] = [
        [2_000_000],
        [500_000, 1_000_000, 1_500_000],
        (1...64).map { UInt32($0) * 31_000 },
    ]

    @Test(arguments: tables)
    func copiesEveryEntryTheDeviceReportsIntoGuestRAM(table: [UInt32]) throws {
        let device = TableWindow(table: table)
        let vm = try VirtualMachine(vcpuCount: 1, handler: device)
        let buffer = vm.layout.scratch.lowerBound
        // Poison the buffer one entry past the table: the op must not touch it.
        let bufferOffset = Int(buffer)
        vm.ram.store32(0xDEAD_BEEF, at: bufferOffset + 4 * table.count)
        let run = try vm.vcpus[0].run(script: [
            .perfTable(window: upstreamRegister(.curPerf), buffer: buffer, maximumEntries: 64)
        ])

        #expect(run.results[0].tableLength == UInt32(table.count))
        #expect(run.results[0].checksum == table.reduce(UInt64(0)) { $0 &+ UInt64($1) })
        let copied = (0..<table.count).map { vm.ram.load32(at: bufferOffset + 4 * $0) }
        #expect(copied == table)
        #expect(vm.ram.load32(at: bufferOffset + 4 * table.count) == 0xDEAD_BEEF)
        // The driver's order: len, then (sel=i, rd) per entry.
        var expected = ["R8"]
        for index in table.indices { expected += ["Wc=\(index)", "R10"] }
        #expect(device.log == expected)
        #expect(run.exits.mmioReads == UInt64(1 + table.count))
        #expect(run.exits.mmioWrites == UInt64(table.count))
    }

    /// perftbl_len 0 or above the maximum: the driver refuses, reads nothing more.
    @Test(arguments: [UInt32(0), 65, 0xFFFF_FFFF])
    func refusesALengthOfZeroOrAboveTheMaximum(length: UInt32) throws {
        let device = TableWindow(table: [1, 2, 3], reportedLength: length)
        let vm = try VirtualMachine(vcpuCount: 1, handler: device)
        let run = try vm.vcpus[0].run(script: [
            .perfTable(window: upstreamRegister(.curPerf), buffer: vm.layout.scratch.lowerBound, maximumEntries: 64)
        ])
        #expect(run.results[0].tableLength == length)
        #expect(run.results[0].checksum == 0)
        #expect(device.log == ["R8"])
        #expect(run.exits.total == 1)
    }
}
