import SystemPackage
import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux

/// The TIMESTAMP and REQUESTS ops of the interpreter (what the doorbell
/// benchmark times requests with), checked on real KVM against the handler's
/// log, the slot's bytes and an independent model of the loop.
@Suite(requiresKVM) struct RequestLoopOpTests {
    typealias Slot = SharedPageABI.Slot

    // MARK: TIMESTAMP

    @Test func timestampsGrowWithTheWorkBetweenThemAndNeverExit() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let run = try vm.vcpus[0].run(script: [
            .timestamp, .spin(iterations: 1_000), .timestamp, .spin(iterations: 20_000_000), .timestamp,
        ])
        let stamps = [run.results[0].timestamp, run.results[2].timestamp, run.results[4].timestamp]
        #expect(stamps[0] < stamps[1] && stamps[1] < stamps[2])
        // 20 000 times the spin between the last two: much more than between the first two.
        #expect(stamps[2] - stamps[1] > 10 * (stamps[1] - stamps[0]))
        #expect(run.exits.total == 0)
    }

    // MARK: The parameter block

    /// The block's bytes, field by field, at the offsets guest_interpreter.S
    /// reads (written out here by hand, not taken from `Field`).
    @Test func parameterBlockLayoutIsWhatTheInterpreterReads() {
        var block = RequestLoopParameters(kind: .publish, target: 0x1234_5678, values: (a: 7, b: 0xFFFF_FFFE))
        block.doorbell = 0xABCD
        block.field = 0x0c
        block.flags = (a: 0x5, b: 0x4)
        block.watch = 0x1111_2222_3333
        block.mask = 0xFFFF
        block.expected = (a: 600, b: 200)
        block.timeoutTicks = 1 << 40
        block.samples = 0x40_0000
        block.gapMask = 0xFFF
        block.seed = 42
        let bytes = block.encoded
        #expect(bytes.count == 104)
        let words = stride(from: 0, to: 104, by: 8).map { littleEndian64(bytes, at: $0) }
        #expect(words == [
            1, 0x1234_5678, 0xABCD, 0x0c, 0xFFFF_FFFE_0000_0007, 0x4_0000_0005, 0x1111_2222_3333, 0xFFFF,
            200 << 32 | 600, 1 << 40, 0x40_0000, 0xFFF, 42,
        ])
        block.seed = 0
        #expect(littleEndian64(block.encoded, at: 96) == 1)  // xorshift would stay 0 forever
    }

    @Test func aBlockOrSampleArrayOutsideRAMIsRefused() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let block = RequestLoopParameters(kind: .store, target: 0, values: (1, 2))
        #expect(throws: KVMError.self) { try block.write(to: vm.ram, at: UInt64(vm.ram.size) - 8, count: 1) }
        #expect(throws: KVMError.self) { try block.write(to: vm.ram, at: vm.layout.scratch.lowerBound + 4, count: 1) }
        var sampled = block
        sampled.samples = UInt64(vm.ram.size) - 64
        #expect(throws: KVMError.self) { try sampled.write(to: vm.ram, at: vm.layout.scratch.lowerBound, count: 5) }
        try sampled.write(to: vm.ram, at: vm.layout.scratch.lowerBound, count: 4)
    }

    // MARK: STORE requests

    /// A handler that, like a VMM applying a request synchronously, writes
    /// `value / 1000` into a RAM word before the guest resumes.
    final class ApplyingHandler: MMIOHandler {
        let ram: AnnotatedMutex<GuestMemoryRegion?> = AnnotatedMutex(nil)
        let watchOffset: Int
        let values = AnnotatedMutex<[UInt64]>([])
        init(watchOffset: Int) { self.watchOffset = watchOffset }
        func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64 { 0 }
        func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64) {
            values.withLock { $0.append(value) }
            ram.withLock { $0?.store32(UInt32(truncatingIfNeeded: value / 1000), at: watchOffset) }
        }
    }

    @Test(arguments: [1, 2, 9] as [UInt32])
    func storeRequestsAlternateAndEachIsOneExit(count: UInt32) throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let scratch = vm.layout.scratch.lowerBound
        var block = RequestLoopParameters(
            kind: .store, target: upstreamRegister(.setPerf), values: (a: 2_400_000, b: 600_000))
        block.samples = scratch + 0x1000
        try block.write(to: vm.ram, at: scratch, count: count)
        let run = try vm.vcpus[0].run(script: [.requests(parameters: scratch, count: count)])
        #expect(run.results == [GuestOpResult(value: 0, aux: 0)])
        #expect(run.exits.mmioWrites == UInt64(count) && run.exits.total == UInt64(count))
        let expected = (0..<count).map { i in
            Access(vcpu: 0, gpa: upstreamRegister(.setPerf), width: 4, value: i % 2 == 0 ? 2_400_000 : 600_000, isWrite: true)
        }
        #expect(handler.accesses == expected)
        let samples = block.samples(in: vm.ram, count: Int(count))
        #expect(samples.count == Int(count))
        for sample in samples {
            // No watch: applied when the store returned; an exit takes time.
            #expect(sample.requestTicks > 0 && sample.appliedTicks == sample.requestTicks)
        }
    }

    @Test func aWaitEndsWhenTheWatchedWordShowsTheRequestApplied() throws {
        let scratchStart = GuestLayout.minimumRAMSize(vcpuCount: 1)
        let watch = scratchStart + 0x800
        let handler = ApplyingHandler(watchOffset: Int(watch))
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        handler.ram.withLock { $0 = vm.ram }
        var block = RequestLoopParameters(kind: .store, target: upstreamRegister(.setPerf), values: (a: 2_400_000, b: 600_000))
        block.watch = watch
        block.mask = 0xFFFF
        block.expected = (a: 2_400, b: 600)
        block.timeoutTicks = 1 << 36  // tens of seconds: never reached
        block.samples = scratchStart + 0x1000
        try block.write(to: vm.ram, at: scratchStart, count: 6)
        let run = try vm.vcpus[0].run(script: [.requests(parameters: scratchStart, count: 6)])
        #expect(run.results[0].abandonedWaits == 0)
        #expect(handler.values.withLock { $0 } == [2_400_000, 600_000, 2_400_000, 600_000, 2_400_000, 600_000])
        for sample in block.samples(in: vm.ram, count: 6) {
            let applied = try #require(sample.appliedTicks)
            #expect(applied >= sample.requestTicks)
        }
    }

    /// The watched word holds A's answer under junk outside the mask and
    /// never B's: even requests are applied at once, odd ones time out.
    @Test func aWaitGivesUpAfterTheTimeoutAndMarksItsSample() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let scratch = vm.layout.scratch.lowerBound
        let watch = scratch + 0x800
        vm.ram.store32(0xBEEF_0000 | 777, at: Int(watch))
        var block = RequestLoopParameters(kind: .store, target: upstreamRegister(.setPerf), values: (a: 1, b: 2))
        block.watch = watch
        block.mask = 0xFFFF
        block.expected = (a: 777, b: 778)
        block.timeoutTicks = 200_000  // well under a millisecond at any TSC rate
        block.samples = scratch + 0x1000
        try block.write(to: vm.ram, at: scratch, count: 5)
        let run = try vm.vcpus[0].run(script: [.requests(parameters: scratch, count: 5)])
        #expect(run.results[0].abandonedWaits == 2)
        let samples = block.samples(in: vm.ram, count: 5)
        #expect(samples.map { $0.appliedTicks == nil } == [false, true, false, true, false])
    }

    // MARK: PUBLISH requests

    @Test(arguments: [false, true])
    func publishRequestsFollowTheSlotProtocolAndKickOnlyWhenAsked(kick: Bool) throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let size = SharedPageABI.regionSize(vcpuCount: 1)
        let memfd = try MemFD.create(name: "shared-page", size: size)
        defer { try? memfd.close() }
        let slot = Int64(SharedPageABI.slotOffset(0))
        try pwrite32(memfd, offset: slot + Int64(Slot.sequence), 11)  // odd: a guest died mid-update
        try pwrite32(memfd, offset: slot + Int64(Slot.utilization), 0xAAAA)
        try pwrite32(memfd, offset: slot + Int64(Slot.hostFlags), kick ? SharedPageABI.HostSlotFlags.kick.rawValue : 0)
        _ = try vm.addMemory(gpa: sharedPageAddress, size: size, from: memfd, readOnly: false)
        let eventfd = try EventFD()
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(0), length: 4, eventfd: eventfd.fileDescriptor)
        let scratch = vm.layout.scratch.lowerBound
        let count: UInt32 = 7
        var block = RequestLoopParameters(
            kind: .publish, target: sharedPageAddress + UInt64(slot), values: (a: 2_400_000, b: 600_000))
        block.field = Slot.performanceKHz
        block.doorbell = doorbellAddress(0)
        block.flags = (a: SharedPageABI.GuestFlags([.perfValid, .latencySensitive]).rawValue,
                       b: SharedPageABI.GuestFlags.perfValid.rawValue)
        try block.write(to: vm.ram, at: scratch, count: count)
        let run = try vm.vcpus[0].run(script: [.requests(parameters: scratch, count: count)])
        #expect(run.results == [GuestOpResult(value: kick ? UInt64(count) : 0, aux: 0)])
        #expect(run.exits.total == 0)
        #expect(try eventfd.read() == (kick ? UInt64(count) : nil))
        let bytes = try pread(memfd, offset: slot, count: SharedPageABI.slotSize)
        // From 10 (11 & ~1), +2 per publish; the last (index 6) is an A request.
        #expect(littleEndian32(bytes, at: Slot.sequence) == 10 + 2 * count)
        #expect(littleEndian32(bytes, at: Slot.flags) == block.flags.a)
        #expect(littleEndian32(bytes, at: Slot.performanceKHz) == 2_400_000)
        #expect(littleEndian32(bytes, at: Slot.utilization) == 0xAAAA)  // the other field is left alone
        #expect(handler.accesses.isEmpty)
    }

    // MARK: Gaps

    /// xorshift64 (13, 7, 17), as the guest runs it.
    static func xorshift(_ x: UInt64) -> UInt64 {
        var x = x
        x ^= x << 13
        x ^= x >> 7
        x ^= x << 17
        return x
    }

    @Test func gapsDrawOneRandomNumberPerRequestAndLeaveTheStateInTheBlock() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let scratch = vm.layout.scratch.lowerBound
        var block = RequestLoopParameters(kind: .store, target: upstreamRegister(.setPerf), values: (a: 1, b: 2))
        block.gapMask = 0x3FF
        block.seed = 12345
        try block.write(to: vm.ram, at: scratch, count: 5)
        _ = try vm.vcpus[0].run(script: [.requests(parameters: scratch, count: 5)])
        let expected = (0..<5).reduce(UInt64(12345)) { state, _ in Self.xorshift(state) }
        #expect(vm.ram.load64(at: Int(scratch) + RequestLoopParameters.Field.rng) == expected)
    }
}
