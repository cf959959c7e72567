import SystemPackage
import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// memfd-backed memslots: the read-only register mirror and shared memory.
@Suite(requiresKVM) struct MemorySlotTests {
    @Test func aReadOnlySlotServesGuestReadsFromTheMemfdWithoutExits() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let size = 2 * 0x1000
        let memfd = try MemFD.create(name: "mirror", size: size)
        defer { try? memfd.close() }
        // Written through the file, not through any mapping: the guest must see the page cache.
        try pwrite32(memfd, offset: Int64(UpstreamABI.Register.curPerf.rawValue), 1_800_000)
        try pwrite32(memfd, offset: Int64(UpstreamABI.Register.perftblLen.rawValue), 3)
        try pwrite32(memfd, offset: 0x1000 + Int64(UpstreamABI.Register.perfDomain.rawValue), 7)
        let base = deviceMap.base
        let mirror = try vm.addMemory(gpa: base, size: size, from: memfd, readOnly: true)
        #expect(mirror.isReadOnly && mirror.guestRange == base..<base + UInt64(size))

        let run = try vm.vcpus[0].run(script: [
            .read32(upstreamRegister(.curPerf), count: 100),
            .read32(upstreamRegister(.perftblLen)),
            .read32(upstreamRegister(.perfDomain, vcpu: 1)),
            .tick(address: upstreamRegister(.curPerf), ticks: 50, spinIterations: 1000),
        ])
        #expect(run.exits.total == 0)
        #expect(handler.accesses.isEmpty)
        #expect(run.results[0] == GuestOpResult(value: 1_800_000, aux: 100 * 1_800_000))
        #expect(run.results[1].lastValue == 3)
        #expect(run.results[2].lastValue == 7)
        #expect(run.results[3] == GuestOpResult(value: 1_800_000, aux: 50 * 1_800_000))

        // The host updates the mirror in place; the next read sees it, still without an exit.
        mirror.store32(2_400_000, at: Int(UpstreamABI.Register.curPerf.rawValue))
        let again = try vm.vcpus[0].run(script: [.read32(upstreamRegister(.curPerf))])
        #expect(again.results[0].lastValue == 2_400_000)
        #expect(again.exits.total == 0)
    }

    @Test func guestWritesToAReadOnlySlotExitAsMMIOAndLeaveItUnchanged() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let memfd = try MemFD.create(name: "mirror", size: 0x1000)
        defer { try? memfd.close() }
        try pwrite32(memfd, offset: 4, 0x5555_5555)
        _ = try vm.addMemory(gpa: deviceMap.base, size: 0x1000, from: memfd, readOnly: true)

        let run = try vm.vcpus[0].run(script: [
            .write32(upstreamRegister(.setPerf), value: 1_200_000, count: 3),
            .read32(upstreamRegister(.setPerf)),
        ])
        #expect(run.exits.mmioWrites == 3 && run.exits.mmioReads == 0)
        let write = Access(vcpu: 0, gpa: upstreamRegister(.setPerf), width: 4, value: 1_200_000, isWrite: true)
        #expect(handler.accesses == [write, write, write])
        #expect(run.results[1].lastValue == 0x5555_5555)
        #expect(littleEndian32(try pread(memfd, offset: 4, count: 4)) == 0x5555_5555)
    }

    @Test func aReadWriteSlotIsSharedBothWaysWithoutExits() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let size = 0x1000
        let memfd = try MemFD.create(name: "shared", size: size)
        defer { try? memfd.close() }
        let gpa = sharedPageAddress
        let region = try vm.addMemory(gpa: gpa, size: size, from: memfd, readOnly: false)
        try pwrite32(memfd, offset: 0x80, 0xCAFE_F00D)

        let run = try vm.vcpus[0].run(script: [
            .write32(gpa + 0x40, value: 0x1234_5678, count: 5),
            .write(address: gpa + 0x48, width: .word64, value: 0x0102_0304_0506_0708, count: 1),
            .read32(gpa + 0x80),
        ])
        #expect(run.exits.total == 0)
        #expect(run.results[2].lastValue == 0xCAFE_F00D)
        // Read back through the file and through the VMM's mapping.
        let bytes = try pread(memfd, offset: 0x40, count: 16)
        #expect(littleEndian32(bytes) == 0x1234_5678)
        #expect(littleEndian64(bytes, at: 8) == 0x0102_0304_0506_0708)
        #expect(region.load32(at: 0x40) == 0x1234_5678)
    }

    @Test func slotsThatOverlapOrAreUnalignedAreRefused() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let memfd = try MemFD.create(name: "bad", size: 0x2000)
        defer { try? memfd.close() }
        // Overlaps guest RAM at GPA 0.
        #expect(throws: KVMError.self) { try vm.addMemory(gpa: 0x1000, size: 0x1000, from: memfd, readOnly: true) }
        #expect(throws: KVMError.self) {
            try vm.addMemory(gpa: deviceMap.base + 0x10, size: 0x1000, from: memfd, readOnly: true)
        }
        #expect(throws: KVMError.self) { try vm.addMemory(gpa: deviceMap.base, size: 0x800, from: memfd, readOnly: true) }
        _ = try vm.addMemory(gpa: deviceMap.base, size: 0x2000, from: memfd, readOnly: true)
        #expect(throws: KVMError.self) {
            try vm.addMemory(gpa: deviceMap.base + 0x1000, size: 0x1000, from: memfd, readOnly: false)
        }
    }
}
