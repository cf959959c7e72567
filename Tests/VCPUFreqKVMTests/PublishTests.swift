import SystemPackage
import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// The shared-page guest protocol as the interpreter's publish op runs it,
/// checked against SharedPageABI and an independent model of the protocol.
@Suite(requiresKVM) struct PublishTests {
    typealias Slot = SharedPageABI.Slot

    struct Case: Sendable, CustomTestStringConvertible {
        var utilization: UInt32
        var performanceKHz: UInt32
        var flags: SharedPageABI.GuestFlags
        var count: UInt32
        var testDescription: String { "util \(utilization) perf \(performanceKHz) ×\(count)" }
    }

    static let cases: [Case] = [
        Case(utilization: 512, performanceKHz: 1_500_000, flags: [.utilValid, .perfValid], count: 1),
        Case(utilization: 1024, performanceKHz: 2_000_000, flags: [.utilValid], count: 2),
        Case(utilization: 0, performanceKHz: 0, flags: [.latencySensitive, .boost, .perfValid], count: 7),
    ]

    /// The protocol's "every publish is a change": odd iterations publish
    /// value - 1, or 1 for 0, which keeps utilization within 0...1024.
    static func published(_ value: UInt32, iteration: UInt32) -> UInt32 {
        iteration % 2 == 0 ? value : (value == 0 ? 1 : value - 1)
    }

    static let vcpu = 1
    static let seededSequence: UInt32 = 40
    static let hostArea: [(offset: Int, value: UInt32)] = [
        (Slot.hostSequence, 6), (Slot.currentPerformanceKHz, 1_000_000), (Slot.appliedClamp, 0x0400_0000),
        (Slot.acknowledgedSequence, 38), (Slot.appliedSliceMicroseconds, 300),
    ]

    /// A VM with the shared page at its device-map address, vCPU 1's slot
    /// seeded (sequence 40, a host area, host flags `hostFlags`).
    static func makeVM(
        handler: RecordingHandler, hostFlags: SharedPageABI.HostSlotFlags
    ) throws -> (VirtualMachine, FileDescriptor, slotGPA: UInt64, region: GuestMemoryRegion) {
        let vm = try VirtualMachine(vcpuCount: 2, handler: handler)
        let size = SharedPageABI.regionSize(vcpuCount: 2)
        let memfd = try MemFD.create(name: "shared-page", size: size)
        let slot = Int64(SharedPageABI.slotOffset(vcpu))
        try pwrite32(memfd, offset: slot + Int64(Slot.sequence), seededSequence)
        try pwrite32(memfd, offset: slot + Int64(Slot.flags), 0xFFFF_FFFF)
        for (offset, value) in hostArea { try pwrite32(memfd, offset: slot + Int64(offset), value) }
        try pwrite32(memfd, offset: slot + Int64(Slot.hostFlags), hostFlags.rawValue)
        let region = try vm.addMemory(gpa: sharedPageAddress, size: size, from: memfd, readOnly: false)
        return (vm, memfd, sharedPageAddress + UInt64(slot), region)
    }

    /// Checks the slot after `count` publishes against the model.
    static func expectSlot(_ memfd: FileDescriptor, after c: Case) throws {
        let slot = try pread(memfd, offset: Int64(SharedPageABI.slotOffset(vcpu)), count: SharedPageABI.slotSize)
        let last = c.count - 1
        #expect(littleEndian32(slot, at: Slot.sequence) == seededSequence + 2 * c.count)
        #expect(littleEndian32(slot, at: Slot.flags) == c.flags.rawValue)
        #expect(littleEndian32(slot, at: Slot.utilization) == published(c.utilization, iteration: last))
        #expect(littleEndian32(slot, at: Slot.performanceKHz) == published(c.performanceKHz, iteration: last))
        for (offset, value) in hostArea { #expect(littleEndian32(slot, at: offset) == value) }
    }

    static func publish(_ c: Case, slot: UInt64) -> GuestOp {
        .publish(
            slot: slot, utilization: c.utilization, performanceKHz: c.performanceKHz, flags: c.flags,
            doorbell: doorbellAddress(vcpu), count: c.count)
    }

    @Test(arguments: cases)
    func withKicksSuppressedNoDoorbellIsWritten(c: Case) throws {
        let handler = RecordingHandler()
        let (vm, memfd, slot, _) = try Self.makeVM(handler: handler, hostFlags: [])
        defer { try? memfd.close() }
        let eventfd = try EventFD()
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(Self.vcpu), length: 4, eventfd: eventfd.fileDescriptor)
        let run = try vm.vcpus[Self.vcpu].run(script: [Self.publish(c, slot: slot)])
        #expect(run.results == [GuestOpResult(value: 0, aux: UInt64(Self.seededSequence + 2 * c.count))])
        #expect(run.exits.total == 0)
        #expect(try eventfd.read() == nil)
        try Self.expectSlot(memfd, after: c)
    }

    @Test(arguments: cases)
    func withTheKickBitSetEveryPublishRingsTheDoorbell(c: Case) throws {
        let handler = RecordingHandler()
        let (vm, memfd, slot, _) = try Self.makeVM(handler: handler, hostFlags: [.kick, .capped])
        defer { try? memfd.close() }
        let eventfd = try EventFD()
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(Self.vcpu), length: 4, eventfd: eventfd.fileDescriptor)
        let run = try vm.vcpus[Self.vcpu].run(script: [Self.publish(c, slot: slot)])
        #expect(run.results[0].doorbellWrites == UInt64(c.count))
        #expect(run.results[0].sequence == Self.seededSequence + 2 * c.count)
        #expect(run.exits.total == 0)
        #expect(try eventfd.read() == UInt64(c.count))
        try Self.expectSlot(memfd, after: c)
    }

    /// The normative sequence rule (docs/abi.md, `SharedPageGuest.publish`):
    /// start from the even value at or below the word (a guest that died
    /// mid-update left it odd), and skip 0 on wrap-around ("never published").
    /// The expected words are written out by hand: (seed, publishes) → sequence.
    @Test(arguments: [
        (UInt32(41), UInt32(1), UInt32(42)), (41, 3, 46), (0xFFFF_FFFE, 1, 2), (0xFFFF_FFFF, 1, 2),
        (0xFFFF_FFFC, 2, 2), (0, 1, 2),
    ])
    func theSequenceStartsEvenAndSkipsZero(seed: UInt32, publishes: UInt32, sequence: UInt32) throws {
        let handler = RecordingHandler()
        let (vm, memfd, slot, _) = try Self.makeVM(handler: handler, hostFlags: [])
        defer { try? memfd.close() }
        try pwrite32(memfd, offset: Int64(SharedPageABI.slotOffset(Self.vcpu) + Slot.sequence), seed)
        let run = try vm.vcpus[Self.vcpu].run(script: [
            .publish(slot: slot, utilization: 9, performanceKHz: 9, flags: [], doorbell: doorbellAddress(Self.vcpu), count: publishes)
        ])
        #expect(run.results[0].sequence == sequence)
        let stored = try pread(memfd, offset: Int64(SharedPageABI.slotOffset(Self.vcpu) + Slot.sequence), count: 4)
        #expect(littleEndian32(stored) == sequence)
    }

    @Test func anUnregisteredDoorbellExitsWithTheVCPUIndexAsValue() throws {
        let handler = RecordingHandler()
        let (vm, memfd, slot, _) = try Self.makeVM(handler: handler, hostFlags: [.kick])
        defer { try? memfd.close() }
        let c = Case(utilization: 1, performanceKHz: 2, flags: [], count: 3)
        let run = try vm.vcpus[Self.vcpu].run(script: [Self.publish(c, slot: slot)])
        #expect(run.exits.mmioWrites == 3)
        let kick = Access(vcpu: 1, gpa: doorbellAddress(1), width: 4, value: 1, isWrite: true)
        #expect(handler.accesses == [kick, kick, kick])
    }

    /// With the slot in a read-only memslot every guest store exits, so the
    /// handler sees the protocol's exact store order: sequence odd, the
    /// request, sequence even, and only then the doorbell. (The stores do not
    /// land, so each iteration starts from the seeded sequence again.)
    @Test func theStoresFollowTheSequenceProtocolInOrder() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 2, handler: handler)
        let size = SharedPageABI.regionSize(vcpuCount: 2)
        let memfd = try MemFD.create(name: "shared-page", size: size)
        defer { try? memfd.close() }
        let slotOffset = SharedPageABI.slotOffset(Self.vcpu)
        try pwrite32(memfd, offset: Int64(slotOffset + Slot.sequence), Self.seededSequence)
        try pwrite32(memfd, offset: Int64(slotOffset + Slot.hostFlags), SharedPageABI.HostSlotFlags.kick.rawValue)
        _ = try vm.addMemory(gpa: sharedPageAddress, size: size, from: memfd, readOnly: true)
        let slot = sharedPageAddress + UInt64(slotOffset)
        let c = Case(utilization: 300, performanceKHz: 900_000, flags: [.utilValid, .boost], count: 2)
        let run = try vm.vcpus[Self.vcpu].run(script: [Self.publish(c, slot: slot)])

        func store(_ offset: Int, _ value: UInt32) -> Access {
            Access(vcpu: Self.vcpu, gpa: slot + UInt64(offset), width: 4, value: UInt64(value), isWrite: true)
        }
        let kick = Access(vcpu: Self.vcpu, gpa: doorbellAddress(Self.vcpu), width: 4, value: 1, isWrite: true)
        var expected: [Access] = []
        for iteration in 0..<c.count {
            expected += [
                store(Slot.sequence, Self.seededSequence + 1),
                store(Slot.flags, c.flags.rawValue),
                store(Slot.utilization, Self.published(c.utilization, iteration: iteration)),
                store(Slot.performanceKHz, Self.published(c.performanceKHz, iteration: iteration)),
                store(Slot.sequence, Self.seededSequence + 2),
                kick,
            ]
        }
        #expect(handler.accesses == expected)
        #expect(run.results[0] == GuestOpResult(value: 2, aux: UInt64(Self.seededSequence + 2)))
        #expect(run.exits.mmioReads == 0)
    }
}
