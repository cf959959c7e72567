// The device model's access stream: a guest's MMIO accesses (and the VMM's
// reports of them: any width, any executing vCPU) run through the pieces
// the daemon runs — device model, shared page host, policy — as
// `ReplaySession` composes them. Asserted after every access: refused
// accesses answer 0 and change nothing, every request is in range, reads
// equal the read-only mirror, the counters equal what happened, and no hint
// exceeds the VM's cap or names a vCPU the VM does not have.
@testable import VCPUFreqCore

enum DeviceTarget {
    /// Kinds that refuse the access outright (read 0, write dropped).
    static let refusals: Set<InvalidAccess> = [
        .badWidth, .unaligned, .unmapped, .vcpuOutOfRange, .beyondLastVCPU, .writeToReadOnly, .readOfWriteOnly,
    ]

    static func operation(_ input: inout FuzzInput, vm: VMModel) -> Trace.Operation {
        let count = vm.vcpuCount
        let kind = input.byte()
        if kind < 16 { return .wait(microseconds: input.value(near: [0, 1000, 1_000_000, UInt64.max / 1000])) }
        // The executing vCPU: mostly one of the VM's, sometimes one it does not have.
        let executing = input.byte() < 240 ? input.index(below: count) : Int(input.integer(UInt16.self))
        let window = UInt64(input.byte() < 240 ? input.index(below: count) : input.index(below: count + 4))
        let offset: UInt64
        switch input.byte() % 6 {
        case 0: offset = DeviceAddressMap.upstreamOffset + window * UpstreamABI.windowSize + UInt64(input.byte() % 0x20)
        case 1: offset = DeviceAddressMap.utilHintOffset + window * UtilHintABI.windowSize + UInt64(input.byte() % 0x24)
        case 2: offset = DeviceAddressMap.sharedPageOffset + UInt64(SharedPageABI.slotOffset(Int(window))) + UInt64(input.byte() % 0x40)
        case 3: offset = DeviceAddressMap.sharedPageOffset + UInt64(input.byte() % 0x40)
        case 4: offset = DeviceAddressMap.doorbellOffset + window * DeviceAddressMap.doorbellStride + UInt64(input.byte() % 4)
        default: offset = input.value(near: [0, DeviceAddressMap.utilHintOffset, DeviceAddressMap.sharedPageOffset,
                                              DeviceAddressMap.doorbellOffset, DeviceAddressMap.totalSpan])
        }
        let widths = [4, 4, 4, 4, 1, 2, 8, 0, 3, 16]
        let width = input.element(of: widths)
        guard kind & 1 == 1 else { return .read(vcpu: executing, offset: offset, width: width) }
        let table = vm.vcpus[Int(window) % count].frequenciesKHz.map(UInt64.init)
        let value = input.value(near: table + [0, 1, 2, 4, 8, 12, 64, 1024, 0xFFFF_FFFF, 1 << 32])
        return .write(vcpu: executing, offset: offset, value: value, width: width)
    }

    /// What one access event must satisfy, given the device as it is after it.
    static func check(_ access: GuestAccess, _ result: AccessResult, session: ReplaySession) {
        let vm = session.vm
        let device = session.device
        if let kind = result.invalid, refusals.contains(kind) {
            invariant(result.value == 0 && result.request == nil && result.kick == nil && result.sharedPageOffset == nil,
                      "refused access \(access) (\(kind)) did something: \(result)")
        }
        if access.isWrite { invariant(result.value == 0, "a write returned \(result.value): \(access)") }
        if let request = result.request {
            invariant(vm.vcpus.indices.contains(request.vcpu), "request for vCPU \(request.vcpu) of a \(vm.vcpuCount)-vCPU VM")
            if let kHz = request.performanceKHz {
                let vcpu = vm.vcpus[request.vcpu]
                invariant(kHz >= 1 && kHz <= vcpu.maxFrequencyKHz, "request of \(kHz) kHz, max \(vcpu.maxFrequencyKHz)")
                if vm.tableMode == .table {
                    invariant(vcpu.frequenciesKHz.contains(kHz), "table-mode request of \(kHz) kHz is not a table entry")
                }
            }
            if let utilization = request.utilization { invariant(utilization <= 1024, "utilization request \(utilization)") }
        }
        if let kick = result.kick { invariant(kick >= 0 && kick < vm.vcpuCount, "kick of doorbell \(kick)") }
        // A valid register read returns what the read-only mirror (upstream) or
        // the side-effect-free accessor (util-hint) shows for it.
        guard !access.isWrite, result.invalid == nil || result.invalid == .tableIndexOutOfRange else { return }
        switch vm.addressMap.region(ofOffset: access.offset) {
        case .upstream(let vcpu, let offset):
            if let register = UpstreamABI.Register(rawValue: offset) {
                invariant(result.value == UInt64(device.mirrorValue(vcpu: vcpu, register: register)),
                          "read of \(register.name) of vCPU \(vcpu) returned \(result.value), the mirror shows \(device.mirrorValue(vcpu: vcpu, register: register))")
                if register == .perftblLen {
                    invariant((1...UInt64(UpstreamABI.maximumTableEntries)).contains(result.value), "perftbl_len \(result.value)")
                }
            }
        case .utilHint(let vcpu, let offset):
            if let register = UtilHintABI.Register(rawValue: offset) {
                invariant(result.value == UInt64(device.utilHintValue(vcpu: vcpu, register: register)),
                          "read of util-hint register \(register) of vCPU \(vcpu) returned \(result.value)")
            }
        case .sharedPage:
            if access.width < 8 { invariant(result.value >> (access.width * 8) == 0, "\(access.width)-byte read returned \(result.value)") }
        default:
            break
        }
    }

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let vm = input.vm()
        let limits = PolicyLimits(vm: vm)
        var session = ReplaySession(vm: vm, stepMicroseconds: UInt64(input.byte()) * 50)
        var accesses: UInt64 = 0, invalid: UInt64 = 0, requests: UInt64 = 0, kicks: UInt64 = 0, shared: UInt64 = 0
        var readsBy = Array(repeating: UInt64(0), count: vm.vcpuCount)
        var requestsBy = Array(repeating: UInt64(0), count: vm.vcpuCount)
        var invalidBy = Array(repeating: UInt64(0), count: vm.vcpuCount)
        var slotRequests: UInt64 = 0, slotBusy: UInt64 = 0
        var lastHint: [HostHint?] = Array(repeating: nil, count: vm.vcpuCount)
        var checked = 0

        func audit(_ session: ReplaySession) {
            for event in session.events[checked...] {
                switch event {
                case .access(_, let access, let result):
                    accesses += 1
                    let byVCPU = vm.vcpus.indices.contains(access.vcpu)
                    if result.invalid != nil {
                        invalid += 1
                        if byVCPU { invalidBy[access.vcpu] += 1 }
                    }
                    if result.request != nil {
                        requests += 1
                        if byVCPU { requestsBy[access.vcpu] += 1 }
                    }
                    if result.kick != nil { kicks += 1 }
                    if result.sharedPageOffset != nil { shared += 1 }
                    if !access.isWrite, result.invalid == nil, result.sharedPageOffset == nil, byVCPU { readsBy[access.vcpu] += 1 }
                    check(access, result, session: session)
                case .request(_, let request):
                    if request.source == .sharedPage { slotRequests += 1 }
                case .unkickedPublication:
                    break
                case .slotBusy:
                    slotBusy += 1
                case .slotFaults(_, let slot, let faults):
                    invariant(!faults.isEmpty && slot < vm.vcpuCount, "fault event for slot \(slot) with \(faults)")
                case .hintApplied(_, let vcpu, let hint, _):
                    invariant(vm.vcpus.indices.contains(vcpu), "hint for vCPU \(vcpu) of a \(vm.vcpuCount)-vCPU VM")
                    invariant(hint.utilMin <= hint.utilMax && hint.utilMax <= limits.utilCap,
                              "hint \(hint) of vCPU \(vcpu) exceeds the cap \(limits.utilCap) (util_cap \(vm.utilCap))")
                    invariant(hint.latency == .none || hint.latency == limits.latencyHint,
                              "latency \(hint.latency) is not the operator's \(limits.latencyHint)")
                    invariant(hint.affinity == (vm.pin ? vm.vcpus[vcpu].hostCPUs : nil), "affinity \(String(describing: hint.affinity))")
                    invariant(lastHint[vcpu] != hint, "vCPU \(vcpu)'s unchanged hint was reported again")
                    lastHint[vcpu] = hint
                }
            }
            checked = session.events.count
        }

        var number = 0
        while !input.isExhausted, number < 2048 {
            number += 1
            session.step(Trace.Line(number: number, operation: operation(&input, vm: vm)))
            audit(session)
        }
        // settle() polls every slot once more; a busy slot there is not an event.
        invariant(session.sharedPage.counters.busy == slotBusy, "\(session.sharedPage.counters.busy) busy slots, \(slotBusy) events")
        session.settle(line: number)
        audit(session)

        let counters = session.device.counters
        invariant(counters.accesses == accesses && counters.invalidTotal == invalid && counters.requests == requests
                  && counters.kicks == kicks && counters.sharedPageAccesses == shared,
                  "device counters \(counters) disagree with the accesses (\(accesses) accesses, \(invalid) invalid, \(requests) requests, \(kicks) kicks, \(shared) shared)")
        for vcpu in 0..<vm.vcpuCount {
            invariant(counters.reads(vcpu: vcpu) == readsBy[vcpu] && counters.requests(vcpu: vcpu) == requestsBy[vcpu]
                      && counters.invalid(vcpu: vcpu) == invalidBy[vcpu], "per-vCPU counters of vCPU \(vcpu)")
            invariant(session.hints[vcpu] == (lastHint[vcpu] ?? .neutral), "final hint of vCPU \(vcpu)")
        }
        let page = session.sharedPage.counters
        invariant(page.consumed == slotRequests, "shared page counters \(page) vs \(slotRequests) requests")
        invariant(session.policy.rejectedRequests == 0, "the policy got a request for a vCPU the VM does not have")
    }

    // MARK: Seeds

    /// The demo's guest session of every fixture VM (`vcpufreq demo
    /// --write-trace`: the driver probe, then boot, app launch, scrolling,
    /// the shared page, a misbehaving guest), whole and its probe alone.
    static func seeds() -> [FuzzSeed] {
        FuzzFixtures.models.enumerated().flatMap { index, vm -> [FuzzSeed] in
            let session = GuestSession(vm: vm)
            let probe = Trace(lines: session.phases.first?.lines ?? [])
            return [
                FuzzSeed(name: "session-\(vm.name)", bytes: encode(session.trace, model: index, vm: vm)),
                FuzzSeed(name: "probe-\(vm.name)", bytes: encode(probe, model: index, vm: vm)),
            ]
        }
    }

    /// `trace` as the decisions `run` reads back into the same accesses of
    /// fixture VM `model` (its settings unchanged, 1 ms per access).
    static func encode(_ trace: Trace, model: Int, vm: VMModel) -> [UInt8] {
        [UInt8(model), 0, 20] + trace.lines.prefix(2048).flatMap { encode($0.operation, vm: vm) ?? [] }
    }

    /// The decisions `operation` reads back into `operation` (nil for the
    /// widths it cannot express: 5...7, 9...15, and for a vCPU the VM lacks).
    static func encode(_ operation: Trace.Operation, vm: VMModel) -> [UInt8]? {
        var bytes: [UInt8] = []
        func integer(_ value: UInt64) { bytes += [0] + (0..<8).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) } }
        func index(_ value: Int) {
            if value < vm.vcpuCount { bytes += [0, UInt8(value)] } else { bytes += [255, UInt8(value % (vm.vcpuCount + 4))] }
        }
        let widths = [4: 0, 1: 4, 2: 5, 8: 6, 0: 7, 3: 8, 16: 9]
        let (vcpu, offset, width, value): (Int, UInt64, Int, UInt64?)
        switch operation {
        case .wait(let microseconds):
            bytes.append(0)
            integer(microseconds)
            return bytes
        case .read(let v, let o, let w): (vcpu, offset, width, value) = (v, o, w, nil)
        case .write(let v, let o, let x, let w): (vcpu, offset, width, value) = (v, o, w, x)
        }
        guard let widthIndex = widths[width], vcpu < vm.vcpuCount else { return nil }
        bytes.append(value == nil ? 16 : 17)
        bytes += [0, UInt8(vcpu)]
        switch vm.addressMap.region(ofOffset: offset) {
        case .upstream(let window, let register) where register < 0x20:
            index(window)
            bytes += [0, UInt8(register)]
        case .utilHint(let window, let register) where register < 0x24:
            index(window)
            bytes += [1, UInt8(register)]
        case .sharedPage(let byte) where byte < 0x40:
            index(0)
            bytes += [3, UInt8(byte)]
        case .sharedPage(let byte) where (byte - 0x40) / 0x40 < UInt64(vm.vcpuCount):
            index(Int((byte - 0x40) / 0x40))
            bytes += [2, UInt8((byte - 0x40) % 0x40)]
        case .doorbell(let bell, let byte):
            index(bell)
            bytes += [4, UInt8(byte)]
        default:
            index(0)
            bytes.append(5)
            integer(offset)
        }
        bytes.append(UInt8(widthIndex))
        if let value { integer(value) }
        return bytes
    }
}
