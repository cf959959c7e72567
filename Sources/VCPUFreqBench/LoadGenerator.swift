import Foundation
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

/// Drives the daemon from the emulated VMMs' side, on the calling thread:
/// issues requests on one path and busy-waits until the daemon shows them
/// applied in the slot's host area (`applied_clamp`, and `applied_slice_us`
/// for the latency variant). Every request changes the hint: utilization
/// alternates between two far-apart values, so completion is unambiguous
/// (request n is applied when the clamp shows its value, which differs
/// from request n-1's, which was applied before n was sent).
///
/// The hot loops allocate nothing: targets are a preallocated array,
/// latencies go to a fixed histogram.
final class LoadGenerator {
    struct Target {
        let vm: Int
        let vcpu: Int
        /// Offset of the vCPU's slot in its VM's page.
        let slot: Int
        let doorbell: Int32
        /// Requests issued so far; its parity picks the next value.
        var issued: UInt64 = 0
        var expectedUtilization: UInt32 = 0
        /// nil: the slice is not checked (utilization-only requests).
        var expectedSliceMicroseconds: UInt32?
        var issuedAt: UInt64 = 0
        var outstanding = false
    }

    /// The two utilizations requests alternate between (far apart: no
    /// hysteresis or rounding could merge them).
    static let lowUtilization: UInt32 = 128
    static let highUtilization: UInt32 = 896
    /// A request not applied within this long means the daemon is stuck or
    /// dropped it: the run fails rather than report a wrong number.
    static let timeoutNanoseconds: UInt64 = 3_000_000_000

    let vms: [EmulatedVM]
    private var targets: [Target]
    let sliceMicroseconds: UInt32
    /// Doorbell writes so far (kicks the guest decided to ring).
    private(set) var doorbellWrites: UInt64 = 0
    /// Draws the gaps between latency samples; seeded, so runs repeat.
    private var jitter = SplitMix64(seed: 0x5643_5046)

    init(vms: [EmulatedVM], sliceMicroseconds: UInt32) {
        self.vms = vms
        self.sliceMicroseconds = sliceMicroseconds
        var targets: [Target] = []
        for (index, vm) in vms.enumerated() {
            for vcpu in 0..<vm.vcpuCount {
                targets.append(Target(
                    vm: index, vcpu: vcpu, slot: SharedPageABI.slotOffset(vcpu), doorbell: vm.doorbells[vcpu].rawValue))
            }
        }
        self.targets = targets
    }

    var targetCount: Int { targets.count }

    /// Requests issued so far, over every target.
    var issuedRequests: UInt64 { targets.reduce(0) { $0 &+ $1.issued } }

    @inline(__always)
    static func now() -> UInt64 { MonotonicClock.nowNanoseconds() }

    // MARK: One request

    private func issue(_ index: Int, path: BenchPath, variant: BenchVariant) throws {
        targets[index].issued &+= 1
        let high = targets[index].issued & 1 == 1
        let utilization = high ? Self.highUtilization : Self.lowUtilization
        let latency = variant == .clampAndSlice && high
        targets[index].expectedUtilization = utilization
        targets[index].expectedSliceMicroseconds = variant == .clampAndSlice ? (latency ? sliceMicroseconds : 0) : nil
        targets[index].outstanding = true
        let target = targets[index]
        let vm = vms[target.vm]
        targets[index].issuedAt = Self.now()
        switch path {
        case .registerForwarding:
            do {
                try vm.client.write(vcpu: target.vcpu, offset: EmulatedVM.utilHintOffset(vcpu: target.vcpu), value: UInt64(utilization))
            } catch {
                throw BenchError("WRITE util_hint to VM \(vm.name) vCPU \(target.vcpu): \(error)")
            }
        case .sharedPageKick, .sharedPagePolled:
            var flags: SharedPageABI.GuestFlags = .utilValid
            if latency { flags.insert(.latencySensitive) }
            let ring = vm.guest.publish(slot: target.vcpu, utilization: utilization, performanceKHz: 0, flags: flags)
            // A guest rings only when the host asked for kicks (the polled
            // path's host does not); KVM's ioeventfd does this write.
            if ring { try ringDoorbell(target.doorbell) }
        case .scmiLevelSet, .scmiLevelSetBatched, .scmiLevelGet:
            preconditionFailure("SCMI paths run through SCMIGenerator")
        }
    }

    private func ringDoorbell(_ fd: Int32) throws {
        var one: UInt64 = 1
        let written = withUnsafeBytes(of: &one) { Glibc.write(fd, $0.baseAddress, 8) }
        guard written == 8 else { throw BenchError("doorbell write failed: errno \(errno)") }
        doorbellWrites &+= 1
    }

    /// The daemon shows the target's last request applied.
    @inline(__always)
    private func isApplied(_ index: Int) -> Bool {
        let target = targets[index]
        let page = vms[target.vm].page
        let clamp = page.loadAcquire(target.slot + SharedPageABI.Slot.appliedClamp)
        guard clamp & 0xFFFF == target.expectedUtilization else { return false }
        guard let slice = target.expectedSliceMicroseconds else { return true }
        return page.loadAcquire(target.slot + SharedPageABI.Slot.appliedSliceMicroseconds) == slice
    }

    private func timedOut(_ index: Int, since start: UInt64) -> BenchError {
        let target = targets[index]
        let area = vms[target.vm].guest.readHostArea(slot: target.vcpu)
        return BenchError(
            "VM \(vms[target.vm].name) vCPU \(target.vcpu): request (util \(target.expectedUtilization)"
                + "\(target.expectedSliceMicroseconds.map { ", slice \($0) µs" } ?? "")) not applied after "
                + "\((Self.now() - start) / 1_000_000) ms; host area: \(area.map { "\($0)" } ?? "unreadable")")
    }

    /// Sends latency-variant requests to `target` until one that sets the
    /// latency flag is applied: afterwards its thread holds the slice.
    func leaveLatencySensitive(target index: Int, path: BenchPath) throws {
        guard targets.indices.contains(index), path.hasLatencyFlag else { return }
        for _ in 0..<2 {
            try issue(index, path: path, variant: .clampAndSlice)
            try waitApplied(index)
            if targets[index].expectedSliceMicroseconds != 0 { return }
        }
    }

    private func waitApplied(_ index: Int) throws {
        let start = targets[index].issuedAt
        while !isApplied(index) {
            sched_yield()
            if Self.now() &- start > Self.timeoutNanoseconds { throw timedOut(index, since: start) }
        }
        targets[index].outstanding = false
    }

    // MARK: Latency, one request at a time

    /// `samples` requests one at a time, round-robin over every vCPU of every
    /// VM, about `gapMicroseconds` apart, so the daemon is asleep in
    /// epoll_wait when the request comes, as with a real guest's sparse
    /// requests. The generator stays busy in the gap, like the vCPU running
    /// guest code between two requests (a sleeping generator would also let
    /// its CPU idle, and its timer and the daemon's poll timer coalesce
    /// within the kernel's timer slack: requests would arrive just before
    /// each poll). Each gap is drawn from [gap/2, 3·gap/2] so nothing stays
    /// in phase with the poll interval either.
    func measureLatency(
        path: BenchPath, variant: BenchVariant, samples: Int, gapMicroseconds: Int, yieldWhileWaiting: Bool
    ) throws -> LatencyHistogram {
        var histogram = LatencyHistogram()
        guard !targets.isEmpty else { return histogram }
        let gap = UInt64(max(gapMicroseconds, 0)) * 1000
        for sample in 0..<samples {
            let index = sample % targets.count
            if gap > 0 {
                let until = Self.now() &+ gap / 2 &+ jitter.next() % (gap + 1)
                while Self.now() < until {
                    if yieldWhileWaiting { sched_yield() }
                }
            }
            try issue(index, path: path, variant: variant)
            let start = targets[index].issuedAt
            var done = Self.now()
            while !isApplied(index) {
                if yieldWhileWaiting { sched_yield() }
                done = Self.now()
                if done &- start > Self.timeoutNanoseconds { throw timedOut(index, since: start) }
            }
            done = Self.now()
            targets[index].outstanding = false
            histogram.record(done &- start)
        }
        return histogram
    }

    // MARK: Throughput, every vCPU loading the daemon

    struct ThroughputResult {
        var completed: UInt64
        var windowNanoseconds: UInt64
        var latency: LatencyHistogram
        var doorbellWrites: UInt64
        /// The generator thread's own CPU time in the window, ns (its share of the 2 cores).
        var generatorCPUNanoseconds: UInt64?
    }

    /// Closed loop: every vCPU of every VM has one request outstanding and
    /// sends its next as soon as the daemon shows the previous one applied.
    /// Runs `warmupNanoseconds`, then measures for `windowNanoseconds`
    /// (calling `windowStarts`/`windowEnds` at the edges, where the caller
    /// snapshots the daemon's counters), then lets every outstanding request
    /// complete. A request's latency here includes queueing behind the others
    /// and the generator's pass over all vCPUs.
    func measureThroughput(
        path: BenchPath, variant: BenchVariant, warmupNanoseconds: UInt64, windowNanoseconds: UInt64,
        yieldWhileWaiting: Bool, windowStarts: () -> Void, windowEnds: () -> Void
    ) throws -> ThroughputResult {
        enum Phase { case warming, measuring, draining }
        var histogram = LatencyHistogram()
        var phase = Phase.warming
        var completed: UInt64 = 0
        let begin = Self.now()
        let measureFrom = begin &+ warmupNanoseconds
        let measureUntil = measureFrom &+ windowNanoseconds
        var windowStart: UInt64 = 0
        var windowEnd: UInt64 = 0
        var doorbellsAtStart: UInt64 = 0
        var doorbellsAtEnd: UInt64 = 0
        var generatorAtStart: ThreadUsage?
        var generatorAtEnd: ThreadUsage?
        var lastProgress = begin
        for index in targets.indices { try issue(index, path: path, variant: variant) }
        while true {
            var progressed = false
            var outstanding = 0
            for index in targets.indices where targets[index].outstanding {
                guard isApplied(index) else {
                    outstanding += 1
                    continue
                }
                let now = Self.now()
                progressed = true
                targets[index].outstanding = false
                if phase == .measuring {
                    histogram.record(now &- targets[index].issuedAt)
                    completed &+= 1
                }
                if phase != .draining {
                    try issue(index, path: path, variant: variant)
                    outstanding += 1
                }
            }
            let now = Self.now()
            if progressed { lastProgress = now }
            switch phase {
            case .warming where now >= measureFrom:
                windowStarts()
                generatorAtStart = ThreadUsage.current()
                doorbellsAtStart = doorbellWrites
                windowStart = Self.now()
                phase = .measuring
            case .measuring where now >= measureUntil:
                windowEnd = Self.now()
                doorbellsAtEnd = doorbellWrites
                generatorAtEnd = ThreadUsage.current()
                windowEnds()
                phase = .draining
            case .draining where outstanding == 0:
                let generatorCPU = generatorAtEnd.flatMap { end in generatorAtStart.map { end.since($0).cpuNanoseconds } }
                return ThroughputResult(
                    completed: completed, windowNanoseconds: windowEnd &- windowStart, latency: histogram,
                    doorbellWrites: doorbellsAtEnd &- doorbellsAtStart, generatorCPUNanoseconds: generatorCPU)
            default:
                break
            }
            if !progressed {
                if now &- lastProgress > Self.timeoutNanoseconds {
                    let stuck = targets.indices.first { targets[$0].outstanding } ?? 0
                    throw timedOut(stuck, since: lastProgress)
                }
                if yieldWhileWaiting { sched_yield() }
            }
        }
    }
}

/// SplitMix64: a tiny, good-enough, seedable generator for the gaps.
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
