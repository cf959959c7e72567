/// Runs a trace of guest accesses through the device model, the shared page
/// host and the policy — exactly the pieces the daemon runs, minus the I/O —
/// on a virtual clock. What guest driver authors use to see what their
/// accesses do, and what `vcpufreq demo` uses to show a guest session.
public struct ReplaySession {
    public let vm: VMModel
    public private(set) var device: DeviceModel
    public private(set) var policy: PolicyEngine
    public let memory: ArraySharedPageMemory
    public private(set) var sharedPage: SharedPageHost<ArraySharedPageMemory>
    /// Virtual time, ns.
    public private(set) var now: UInt64 = 0
    /// Virtual time each access takes, ns (a `wait` line adds more).
    public var stepNanoseconds: UInt64
    /// Applied hint per vCPU as the host would have it after each change.
    public private(set) var hints: [HostHint]
    /// Changes applied per vCPU (what the daemon would turn into syscalls).
    public private(set) var hintChanges: [Int]
    public private(set) var lastRequests: [GuestRequest?]
    public private(set) var events: [ReplayEvent] = []

    public init(vm: VMModel, stepMicroseconds: UInt64 = 1000) {
        self.vm = vm
        self.device = DeviceModel(vm: vm)
        self.policy = PolicyEngine(vm: vm)
        self.memory = ArraySharedPageMemory(vcpuCount: vm.vcpuCount)
        self.sharedPage = SharedPageHost(memory: memory, vm: vm)
        self.sharedPage.initialize(pollIntervalMicroseconds: 1000, generation: 1, doorbellCount: vm.vcpuCount)
        self.stepNanoseconds = stepMicroseconds &* 1000
        self.hints = Array(repeating: .neutral, count: vm.vcpuCount)
        self.hintChanges = Array(repeating: 0, count: vm.vcpuCount)
        self.lastRequests = Array(repeating: nil, count: vm.vcpuCount)
        applyChanges(line: 0)
    }

    /// Runs every line of `trace`, then lets the policy's timers that fall
    /// within one minimum interval after the last line fire, so requests
    /// held by the rate limit show in the final hints.
    public mutating func run(_ trace: Trace) {
        for line in trace.lines { step(line) }
        settle(line: trace.lines.last?.number ?? 0)
    }

    public mutating func step(_ line: Trace.Line) {
        switch line.operation {
        case .wait(let microseconds):
            now &+= microseconds &* 1000
            policy.advance(to: now)
            applyChanges(line: line.number)
        case .read(let vcpu, let offset, let width):
            advanceOneStep(line: line.number)
            access(line: line.number, GuestAccess(vcpu: vcpu, offset: offset, width: width, value: nil))
        case .write(let vcpu, let offset, let value, let width):
            advanceOneStep(line: line.number)
            access(line: line.number, GuestAccess(vcpu: vcpu, offset: offset, width: width, value: value))
        }
    }

    /// The time one access takes: a policy timer that falls due in it is
    /// applied before the access, as the daemon's loop applies a timer's
    /// change when it fires (a read of `applied_util` sees it).
    private mutating func advanceOneStep(line: Int) {
        now &+= stepNanoseconds
        policy.advance(to: now)
        applyChanges(line: line)
    }

    /// Fires the timers due within one minimum interval, and polls every
    /// shared page slot once (reporting slots updated without a doorbell).
    public mutating func settle(line: Int) {
        for slot in 0..<vm.vcpuCount {
            if case .request(let request, _, let faults) = sharedPage.consume(slot: slot) {
                events.append(.unkickedPublication(line: line, slot: slot, request: request, faults: faults))
                submit(request, line: line)
            }
        }
        // The engine's own reading of the setting (a hand-built model may
        // carry a negative one: it means no interval, not a trap).
        let horizon = PolicyLimits.deadline(now, plus: policy.limits.minimumIntervalNanoseconds)
        while let deadline = policy.nextDeadline, deadline <= horizon {
            now = max(now, deadline)
            policy.advance(to: now)
        }
        applyChanges(line: line)
    }

    private mutating func access(line: Int, _ access: GuestAccess) {
        var result = device.access(access)
        if let offset = result.sharedPageOffset {
            result.value = memory.emulateAccess(offset: offset, width: access.width, value: access.value)
        }
        events.append(.access(line: line, access: access, result: result))
        if let request = result.request { submit(request, line: line) }
        if let doorbell = result.kick {
            switch sharedPage.consume(slot: doorbell) {
            case .request(let request, _, let faults):
                if !faults.isEmpty { events.append(.slotFaults(line: line, slot: doorbell, faults: faults)) }
                submit(request, line: line)
            case .busy:
                events.append(.slotBusy(line: line, slot: doorbell))
            case .unchanged, .noSuchSlot:
                break
            }
        }
        applyChanges(line: line)
    }

    private mutating func submit(_ request: GuestRequest, line: Int) {
        events.append(.request(line: line, request: request))
        if lastRequests.indices.contains(request.vcpu) { lastRequests[request.vcpu] = request }
        policy.submit(request, now: now)
    }

    /// Drains the policy's changes into the hints, the util-hint
    /// `applied_util` register and the shared page host areas.
    private mutating func applyChanges(line: Int) {
        var changed: [(Int, HostHint)] = []
        policy.drainChanges { vcpu, hint in changed.append((vcpu, hint)) }
        for (vcpu, hint) in changed {
            hints[vcpu] = hint
            hintChanges[vcpu] += 1
            device.setAppliedUtilization(vcpu: vcpu, hint.utilMin)
            let flags: SharedPageABI.HostSlotFlags = policy.state(vcpu: vcpu).isCapped ? .capped : []
            sharedPage.publish(slot: vcpu, currentPerformanceKHz: device.currentPerformanceKHz(vcpu: vcpu), hint: hint, flags: flags)
            events.append(.hintApplied(line: line, vcpu: vcpu, hint: hint, atNanoseconds: now))
        }
    }
}

/// Something that happened during a replay, in order.
public enum ReplayEvent: Equatable, Sendable {
    /// A trace line's access and the device's answer (the value of a read).
    case access(line: Int, access: GuestAccess, result: AccessResult)
    /// A request reached the policy (from a register or a shared page slot).
    case request(line: Int, request: GuestRequest)
    /// The policy changed a vCPU's hint (the daemon would apply it now).
    case hintApplied(line: Int, vcpu: Int, hint: HostHint, atNanoseconds: UInt64)
    /// A doorbell found its slot malformed (corrected; see docs/abi.md).
    case slotFaults(line: Int, slot: Int, faults: InvalidAccessSet)
    /// A doorbell found its slot mid-update on every attempt.
    case slotBusy(line: Int, slot: Int)
    /// At the end, a slot was found updated that no doorbell announced: the
    /// guest forgot to kick while the host asked for kicks.
    case unkickedPublication(line: Int, slot: Int, request: GuestRequest, faults: InvalidAccessSet)
}
