// The shared page host reader (SharedPageHost) over whatever the guest
// writes into the page: torn and partial stores of any width anywhere in
// the region (its host half and the header included), slots left odd,
// sequence numbers that repeat, jump or wrap, out-of-range values — mixed
// with well-formed publishes (SharedPageGuest) and the host's own calls
// (consume, publish, kick suppression, re-initialisation).
//
// Asserted after every step, against what docs/abi.md specifies, computed
// here from the page's words: consume answers busy for an odd sequence,
// unchanged for the last consumed one, else exactly the validated request
// (each bad field corrected or dropped, each fault named) with its sequence
// acknowledged; nothing the guest writes moves the host's own sequence or
// flags, so a publish always shows, to a guest reading the host half, what
// the host published; the kick flags and the re-check list follow the
// handshake; the counters count exactly what happened.
@testable import VCPUFreqCore

enum SharedPageTarget {
    typealias S = SharedPageABI.Slot
    typealias H = SharedPageABI.Header

    /// What this target knows the host did, to check the host against.
    struct Expected {
        var lastConsumed: [UInt32]
        var hostSequence: [UInt32]
        var kick: [Bool]
        var counters = (consumed: UInt64(0), unchanged: UInt64(0), busy: UInt64(0), caught: UInt64(0))
        var faults = Array(repeating: UInt64(0), count: InvalidAccess.allCases.count)
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let vm = input.vm()
        let count = vm.vcpuCount
        let memory = ArraySharedPageMemory(vcpuCount: count)
        let guest = SharedPageGuest(memory: memory, vcpuCount: count)
        var host = SharedPageHost(memory: memory, vm: vm)
        let maximum = vm.vcpus.map(\.maxFrequencyKHz)
        var expected = Expected(
            lastConsumed: Array(repeating: 0, count: count), hostSequence: Array(repeating: 0, count: count),
            kick: Array(repeating: true, count: count))

        // A page that outlived a host: whatever an earlier guest left.
        for _ in 0..<input.index(below: 8) { scribble(&input, memory: memory, count: count) }
        initialize(&input, host: &host, memory: memory, expected: &expected)

        var steps = 0
        while !input.isExhausted, steps < 1024 {
            steps += 1
            switch input.byte() % 10 {
            case 0, 1, 2:
                scribble(&input, memory: memory, count: count)
            case 3, 4:
                let slot = input.index(below: count)
                _ = guest.publish(
                    slot: slot, utilization: UInt32(truncatingIfNeeded: input.value(near: [0, 512, 1024, 1025])),
                    performanceKHz: UInt32(truncatingIfNeeded: input.value(near: maximum.map(UInt64.init) + [0, 1])),
                    flags: SharedPageABI.GuestFlags(rawValue: input.bool() ? UInt32(input.byte() & 0xF) : input.integer()))
            case 5, 6:
                let slot = input.byte() < 240 ? input.index(below: count) : Int(input.integer(Int16.self))
                consume(slot: slot, host: &host, memory: memory, maximum: maximum, expected: &expected)
            case 7:
                let slot = input.byte() < 240 ? input.index(below: count) : Int(input.integer(Int16.self))
                let hint = HostHint(
                    utilMin: input.integer(), utilMax: input.integer(),
                    latency: input.bool() ? .slice(microseconds: input.integer()) : .none)
                let flags = SharedPageABI.HostSlotFlags(rawValue: UInt32(input.byte() & 0xF))
                let performance: UInt32 = input.integer()
                host.publish(slot: slot, currentPerformanceKHz: performance, hint: hint, flags: flags)
                guard slot >= 0, slot < count else { break }
                expected.hostSequence[slot] &+= 2
                checkHostArea(slot: slot, guest: guest, host: host, expected: expected, performance: performance, hint: hint)
            case 8:
                let slots = (0..<input.index(below: 6)).map { _ in input.byte() < 240 ? input.index(below: count) : Int(input.integer(Int16.self)) }
                if input.bool() {
                    host.suppressKicks(slots: slots)
                    for slot in slots where slot >= 0 && slot < count { expected.kick[slot] = false }
                } else {
                    let valid = slots.filter { $0 >= 0 && $0 < count }
                    for slot in valid { expected.kick[slot] = true }
                    let changed = host.requestKicks(slots: slots)
                    let updated = valid.filter { memory.load(SharedPageABI.slotOffset($0) + S.sequence) != expected.lastConsumed[$0] }
                    invariant(changed == updated, "requestKicks(\(slots)) returned \(changed), the updated slots are \(updated)")
                    expected.counters.caught &+= UInt64(changed.count)
                }
            default:
                if input.bool() {
                    host.setStatus(SharedPageABI.HostStatus(rawValue: UInt32(input.byte() & 3)))
                } else {
                    initialize(&input, host: &host, memory: memory, expected: &expected)
                }
            }
            for slot in 0..<count {
                invariant(host.kicksRequested(slot: slot) == expected.kick[slot], "kick flag of slot \(slot)")
            }
            invariant(!host.kicksRequested(slot: -1) && !host.kicksRequested(slot: count), "kick flag of a slot the VM lacks")
            let counters = host.counters
            invariant(counters.consumed == expected.counters.consumed && counters.unchanged == expected.counters.unchanged
                      && counters.busy == expected.counters.busy && counters.caughtByRecheck == expected.counters.caught,
                      "counters \(counters), expected \(expected.counters)")
            for kind in InvalidAccess.allCases {
                invariant(counters[kind] == expected.faults[kind.rawValue], "\(kind) counted \(counters[kind]) times")
            }
        }
    }

    /// A guest store of 1, 2, 4 or 8 bytes: mostly on a slot's fields
    /// (host half included) or the header, sometimes anywhere.
    static func scribble(_ input: inout FuzzInput, memory: ArraySharedPageMemory, count: Int) {
        let offset: UInt64
        switch input.byte() % 4 {
        case 0, 1: offset = UInt64(SharedPageABI.slotOffset(input.index(below: count))) + UInt64(input.byte() % 64)
        case 2: offset = UInt64(input.byte() % 64)
        default: offset = input.value(near: [0, UInt64(SharedPageABI.regionSize(vcpuCount: count)), UInt64(Int.max)])
        }
        let width = input.element(of: [4, 4, 1, 2, 8])
        let value = input.value(near: [0, 1, 2, 3, 0xFFFF_FFFF, 0xFFFF_FFFE, 1024, 1025])
        _ = memory.emulateAccess(offset: offset & ~UInt64(width - 1), width: width, value: value)
    }

    static func initialize(
        _ input: inout FuzzInput, host: inout SharedPageHost<ArraySharedPageMemory>, memory: ArraySharedPageMemory,
        expected: inout Expected
    ) {
        let features = input.bool() ? SharedPageABI.Feature.all : SharedPageABI.Feature(rawValue: UInt32(input.byte() & 0x1F))
        let poll: UInt32 = input.integer(), generation: UInt32 = input.integer()
        let doorbells = input.bool() ? host.vcpuCount : Int(input.integer(Int16.self))
        let before = (0..<host.vcpuCount).map { memory.load(SharedPageABI.slotOffset($0) + S.hostSequence) }
        host.initialize(features: features, pollIntervalMicroseconds: poll, generation: generation, doorbellCount: doorbells)
        for slot in 0..<host.vcpuCount {
            expected.lastConsumed[slot] = 0
            expected.kick[slot] = true
            // Continued from memory, made even, then one publish.
            expected.hostSequence[slot] = (before[slot] & ~1) &+ 2
            invariant(memory.load(SharedPageABI.slotOffset(slot) + S.hostSequence) == expected.hostSequence[slot],
                      "slot \(slot) host sequence after initialize")
            invariant(memory.load(SharedPageABI.slotOffset(slot) + S.acknowledgedSequence) == 0, "slot \(slot) acknowledged sequence")
        }
        let header: [(Int, UInt32)] = [
            (H.magic, SharedPageABI.magic), (H.version, SharedPageABI.version), (H.features, features.rawValue),
            (H.hostStatus, SharedPageABI.HostStatus.active.rawValue), (H.vcpuCount, UInt32(host.vcpuCount)),
            (H.slotOffset, 64), (H.slotSize, 64), (H.pollIntervalMicroseconds, poll), (H.generation, generation),
            (H.doorbellCount, UInt32(clamping: max(0, doorbells))),
        ]
        for (offset, value) in header {
            invariant(memory.load(offset) == value, "header word 0x\(String(offset, radix: 16)) is \(memory.load(offset)), not \(value)")
        }
    }

    static func consume(
        slot: Int, host: inout SharedPageHost<ArraySharedPageMemory>, memory: ArraySharedPageMemory, maximum: [UInt32],
        expected: inout Expected
    ) {
        let read = host.consume(slot: slot)
        guard slot >= 0, slot < host.vcpuCount else {
            invariant(read == .noSuchSlot, "consume of slot \(slot) of \(host.vcpuCount) gave \(read)")
            return
        }
        let base = SharedPageABI.slotOffset(slot)
        let sequence = memory.load(base + S.sequence)
        if sequence & 1 != 0 {
            invariant(read == .busy, "slot \(slot) with odd sequence \(sequence) gave \(read)")
            expected.counters.busy &+= 1
            return
        }
        if sequence == expected.lastConsumed[slot] {
            invariant(read == .unchanged, "slot \(slot) with the consumed sequence \(sequence) gave \(read)")
            expected.counters.unchanged &+= 1
            return
        }
        let (request, faults) = specified(slot: slot, memory: memory, features: host.features, maximum: maximum[slot])
        invariant(read == .request(request, sequence: sequence, faults: faults),
                  "slot \(slot) (sequence \(sequence)) gave \(read), docs/abi.md says \(request) with \(faults)")
        invariant(memory.load(base + S.acknowledgedSequence) == sequence, "slot \(slot): sequence \(sequence) not acknowledged")
        invariant(host.hostFlags[slot].contains(.rejected) == !faults.isEmpty, "slot \(slot): rejected flag with faults \(faults)")
        expected.lastConsumed[slot] = sequence
        expected.counters.consumed &+= 1
        for kind in InvalidAccess.allCases where faults.contains(kind) { expected.faults[kind.rawValue] &+= 1 }
    }

    /// docs/abi.md, "Validation": the request a consistent slot stands for.
    static func specified(slot: Int, memory: ArraySharedPageMemory, features: SharedPageABI.Feature, maximum: UInt32)
        -> (GuestRequest, InvalidAccessSet)
    {
        let base = SharedPageABI.slotOffset(slot)
        let flags = memory.load(base + S.flags)
        let utilization = memory.load(base + S.utilization)
        let performance = memory.load(base + S.performanceKHz)
        var faults = InvalidAccessSet()
        var request = GuestRequest(vcpu: slot, source: .sharedPage)
        if flags & ~0xF != 0 { faults.insert(.unknownFlags) }
        if flags & 4 != 0, features.contains(.utilization) {
            if utilization > 1024 { faults.insert(.utilizationAboveMax) }
            request.utilization = min(utilization, 1024)
        }
        if flags & 8 != 0, features.contains(.performance) {
            if performance == 0 {
                faults.insert(.performanceZero)
            } else {
                if performance > maximum { faults.insert(.performanceAboveMax) }
                request.performanceKHz = min(performance, maximum)
            }
        }
        if features.contains(.latencyHint) { request.latencySensitive = flags & 1 != 0 }
        request.boost = features.contains(.boost) && flags & 2 != 0
        return (request, faults)
    }

    /// Right after a publish the host half holds exactly what was published,
    /// whatever the guest wrote there before; a guest reads it back.
    static func checkHostArea(
        slot: Int, guest: SharedPageGuest<ArraySharedPageMemory>, host: SharedPageHost<ArraySharedPageMemory>,
        expected: Expected, performance: UInt32, hint: HostHint
    ) {
        let area = guest.readHostArea(slot: slot)
        let slice: UInt32
        if case .slice(let microseconds) = hint.latency { slice = microseconds } else { slice = 0 }
        let published = SharedPageGuest<ArraySharedPageMemory>.HostArea(
            sequence: expected.hostSequence[slot], currentPerformanceKHz: performance, utilMin: hint.utilMin,
            utilMax: hint.utilMax, flags: host.hostFlags[slot], appliedSliceMicroseconds: slice)
        invariant(area == published, "slot \(slot): the guest reads \(String(describing: area)), the host published \(published)")
        invariant(!expected.kick[slot] || published.flags.contains(.kick), "slot \(slot): kick flag lost by a publish")
    }

    // MARK: Seeds

    /// Every fixture VM: its guest publishes util and perf requests the way
    /// the demo's shared page phases do, the host consumes them, publishes
    /// hints, and suppresses and re-requests kicks.
    static func seeds() -> [FuzzSeed] {
        FuzzFixtures.models.indices.map { model in
            var bytes: [UInt8] = [UInt8(model), 0]   // fixture VM, settings as they are
            bytes += [0]                             // no scribbles before initialize
            bytes += [1] + [UInt8](repeating: 0, count: 8) + [1, 0, 0, 0] + [1]  // all features, poll, generation 1, doorbells
            for slot in 0..<4 {
                bytes += [3, UInt8(slot), 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0x04]         // publish util 512, util_valid
                bytes += [5, 0, UInt8(slot)]                                            // consume
                bytes += [7, 0, UInt8(slot), 0, 2, 0, 4, 1, 0x2C, 1, 0, 0, 0, 0, 0, 0, 0] // publish a hint
                bytes += [3, UInt8(slot), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x0B]         // publish perf max, boost
                bytes += [5, 0, UInt8(slot), 5, 0, UInt8(slot)]                         // consume twice
            }
            bytes += [8, 4, 0, 0, 0, 1, 0, 2, 0, 3, 1]  // suppress kicks of 0-3
            bytes += [2, 0, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0]  // a torn store into slot 0's sequence
            bytes += [8, 4, 0, 0, 0, 1, 0, 2, 0, 3, 0]  // request kicks of 0-3
            return FuzzSeed(name: "publish-consume-\(FuzzFixtures.models[model].name)", bytes: bytes)
        }
    }
}
