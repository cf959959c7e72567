/// A realistic guest session as a trace, built from a VM model: what a Linux
/// guest with the upstream `virtual-cpufreq` driver (plus a paravirt agent
/// using the util-hint windows and the shared page) does during boot, an app
/// launch, touch-driven scrolling and a return to background. Used by
/// `vcpufreq demo`, and written out by it as a trace file anyone can replay.
public struct GuestSession: Sendable {
    public struct Phase: Sendable {
        public var name: String
        /// What the guest is doing, for the demo's narration.
        public var summary: String
        public var lines: [Trace.Line]
    }

    public private(set) var phases: [Phase] = []
    private var lineNumber = 0
    /// Guest sequence counter per shared page slot, as the guest keeps it
    /// across the whole session.
    private var sequences: [Int: UInt32] = [:]

    public init(vm: VMModel) {
        let policies = vm.domains.map { $0.first! }
        let n = vm.vcpuCount

        phase("probe", "driver probe: perftbl_len of every CPU, each policy's table via sel/rd, perf_domain of all CPUs") { s in
            for cpu in 0..<n { s.read(cpu: 0, offset: Self.upstream(cpu, .perftblLen)) }
            for policy in policies {
                let length = vm.tableMode == .table ? vm.vcpus[policy].frequenciesKHz.count : 1
                for index in 0..<length {
                    s.write(cpu: 0, offset: Self.upstream(policy, .perftblSel), value: UInt64(index))
                    s.read(cpu: 0, offset: Self.upstream(policy, .perftblRd))
                }
                for cpu in 0..<n { s.read(cpu: 0, offset: Self.upstream(cpu, .perfDomain)) }
            }
        }

        phase("idle", "schedutil at rest: every policy asks for its lowest level") { s in
            for policy in policies {
                s.write(cpu: policy, offset: Self.upstream(policy, .setPerf), value: UInt64(Self.level(vm, policy, 0.0)))
            }
            s.wait(20_000)
        }

        let fastest = policies.max { vm.vcpus[$0].capacity < vm.vcpus[$1].capacity }!
        let slowest = policies.min { vm.vcpus[$0].capacity < vm.vcpus[$1].capacity }!
        phase("app launch", "a burst: the fastest policy ramps to max in 1 ms steps, the others follow part way") { s in
            for step in 1...4 {
                for policy in policies {
                    let share = policy == fastest ? Double(step) / 4 : Double(step) / 8
                    s.write(cpu: policy, offset: Self.upstream(policy, .setPerf), value: UInt64(Self.level(vm, policy, share)))
                }
                for cpu in 0..<n { s.read(cpu: cpu, offset: Self.upstream(cpu, .curPerf)) }  // scheduler ticks
                s.wait(1000)
            }
        }

        let touched = vm.vcpus[fastest].index
        phase("touch", "input arrives: the paravirt agent publishes a latency-sensitive boost in vCPU \(touched)'s shared page slot and rings its doorbell") { s in
            s.publish(vcpu: touched, utilization: 600, flags: SharedPageABI.GuestFlags([.latencySensitive, .boost, .utilValid]))
            s.wait(2000)
        }

        let hinted = vm.vcpus[slowest].index
        phase("scroll", "scrolling: util hints through vCPU \(hinted)'s util-hint window, set_perf settling on the fastest policy") { s in
            for util in [420, 460, 380] {
                s.write(cpu: hinted, offset: Self.utilHint(hinted, .utilHint), value: UInt64(util))
                s.write(cpu: fastest, offset: Self.upstream(fastest, .setPerf), value: UInt64(Self.level(vm, fastest, 0.6)))
                s.wait(4000)
            }
            s.read(cpu: hinted, offset: Self.utilHint(hinted, .appliedUtil))
        }

        phase("background", "the app goes to background: requests fall, the touch ends, the boost expires after its hold") { s in
            s.publish(vcpu: touched, utilization: 50, flags: SharedPageABI.GuestFlags([.utilValid]))
            for policy in policies {
                s.write(cpu: policy, offset: Self.upstream(policy, .setPerf), value: UInt64(Self.level(vm, policy, 0.1)))
            }
            s.write(cpu: hinted, offset: Self.utilHint(hinted, .utilHint), value: 0)
            s.wait(UInt64(vm.policy.boostHoldMilliseconds) * 1000 + 5000)
        }

        phase("misbehaving guest", "bad accesses: set_perf 0xFFFFFFFF, util 5000, a byte-wide read, a write to a read-only register") { s in
            let policy = policies.last!
            s.write(cpu: policy, offset: Self.upstream(policy, .setPerf), value: 0xFFFF_FFFF)
            s.write(cpu: hinted, offset: Self.utilHint(hinted, .utilHint), value: 5000)
            s.read(cpu: 0, offset: Self.upstream(0, .curPerf), width: 1)
            s.write(cpu: 0, offset: Self.upstream(0, .perftblLen), value: 7)
            s.wait(2000)
        }
    }

    /// All lines, in order.
    public var trace: Trace { Trace(lines: phases.flatMap(\.lines)) }

    /// The trace as text (`vcpufreq device replay` reads it back), phases as comments.
    public var text: String {
        var out: [String] = []
        for phase in phases {
            out.append("# \(phase.name): \(phase.summary)")
            for line in phase.lines { out.append(Self.format(line.operation)) }
        }
        return out.joined(separator: "\n") + "\n"
    }

    static func format(_ operation: Trace.Operation) -> String {
        func hex(_ value: UInt64) -> String { "0x" + String(value, radix: 16) }
        switch operation {
        case .read(let vcpu, let offset, let width):
            return "\(vcpu) r \(hex(offset))" + (width == 4 ? "" : " \(width)")
        case .write(let vcpu, let offset, let value, let width):
            return "\(vcpu) w \(hex(offset)) \(value)" + (width == 4 ? "" : " \(width)")
        case .wait(let microseconds):
            return "wait \(microseconds)"
        }
    }

    // MARK: Building

    private mutating func phase(_ name: String, _ summary: String, _ build: (inout Builder) -> Void) {
        var builder = Builder(firstLine: lineNumber + 1, sequences: sequences)
        build(&builder)
        lineNumber += builder.lines.count
        sequences = builder.sequences
        phases.append(Phase(name: name, summary: summary, lines: builder.lines))
    }

    struct Builder {
        var lines: [Trace.Line] = []
        var next: Int
        var sequences: [Int: UInt32]

        init(firstLine: Int, sequences: [Int: UInt32]) {
            next = firstLine
            self.sequences = sequences
        }

        mutating func add(_ operation: Trace.Operation) {
            lines.append(Trace.Line(number: next, operation: operation))
            next += 1
        }

        mutating func read(cpu: Int, offset: UInt64, width: Int = 4) { add(.read(vcpu: cpu, offset: offset, width: width)) }
        mutating func write(cpu: Int, offset: UInt64, value: UInt64) { add(.write(vcpu: cpu, offset: offset, value: value, width: 4)) }
        mutating func wait(_ microseconds: UInt64) { add(.wait(microseconds: microseconds)) }

        /// The shared page publish protocol as plain stores (docs/abi.md):
        /// sequence odd, fields, sequence even, then the doorbell.
        mutating func publish(vcpu: Int, utilization: UInt32, flags: SharedPageABI.GuestFlags) {
            let slot = DeviceAddressMap.sharedPageOffset + UInt64(SharedPageABI.slotOffset(vcpu))
            let sequence = sequences[vcpu, default: 0]
            write(cpu: vcpu, offset: slot + UInt64(SharedPageABI.Slot.sequence), value: UInt64(sequence + 1))
            write(cpu: vcpu, offset: slot + UInt64(SharedPageABI.Slot.flags), value: UInt64(flags.rawValue))
            write(cpu: vcpu, offset: slot + UInt64(SharedPageABI.Slot.utilization), value: UInt64(utilization))
            write(cpu: vcpu, offset: slot + UInt64(SharedPageABI.Slot.sequence), value: UInt64(sequence + 2))
            read(cpu: vcpu, offset: slot + UInt64(SharedPageABI.Slot.hostFlags))
            write(cpu: vcpu, offset: DeviceAddressMap.doorbellOffset + DeviceAddressMap.doorbellStride * UInt64(vcpu), value: 1)
            sequences[vcpu] = sequence + 2
        }
    }

    static func upstream(_ cpu: Int, _ register: UpstreamABI.Register) -> UInt64 {
        DeviceAddressMap.upstreamOffset + UInt64(cpu) * UpstreamABI.windowSize + register.rawValue
    }

    static func utilHint(_ cpu: Int, _ register: UtilHintABI.Register) -> UInt64 {
        DeviceAddressMap.utilHintOffset + UInt64(cpu) * UtilHintABI.windowSize + register.rawValue
    }

    /// The table level at `share` (0...1) of the way up the vCPU's table, as
    /// schedutil would pick it in table mode; any value in max-only mode.
    static func level(_ vm: VMModel, _ vcpu: Int, _ share: Double) -> UInt32 {
        let table = vm.vcpus[vcpu].frequenciesKHz
        if vm.tableMode == .maxOnly {
            return max(1, UInt32(Double(vm.vcpus[vcpu].maxFrequencyKHz) * max(share, 0.05)))
        }
        let index = min(table.count - 1, Int((Double(table.count - 1) * share).rounded()))
        return table[index]
    }
}
