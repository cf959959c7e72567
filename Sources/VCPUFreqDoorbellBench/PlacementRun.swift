import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// Every measurement of one placement: the host-only wake-up, KVM's own
/// cost of a kick, the paths' costs and latencies, the reads.
///
/// Costs and latencies are interleaved: round after round, every path in
/// turn (the VMs of paths 4 and 5 attached only for their turns). On a shared machine a
/// burst of outside work then lands on every path alike, instead of on
/// whichever path happened to run during it.
struct PlacementRun {
    let placement: Placement
    let rig: Rig
    let configuration: BenchConfiguration
    let cpuCount: Int
    let calibration: Rig.Calibration
    let gapMask: UInt64
    let seed: UInt64
    let progress: ProgressReporter

    /// The progress steps one placement takes.
    static func steps(_ configuration: BenchConfiguration) -> Int {
        3 + max(configuration.latencyRounds, 1) + ReadPathKind.allCases.count
    }

    /// The daemon's own counters over a path's timed requests.
    struct DaemonCounters {
        var requests: UInt64 = 0
        var kicks: UInt64 = 0
        var polls: UInt64 = 0
        /// The daemon loop's wake-ups (STATUS `daemon.wakeups.total`), less
        /// the one of the STATUS that closes the window.
        var wakeups: UInt64 = 0
    }

    /// What a path gathers over the rounds.
    private struct Gathered {
        var costs: [RequestPath.Cost] = []
        var latency = RequestPath.Latency.empty
        var daemon: DaemonCounters?
        var accounting = HostAccounting.Delta()
    }

    func measure() throws(BenchError) -> PlacementResults {
        try placement.apply(cpuCount: cpuCount, vcpuThreads: rig.vcpuThreads, daemonPID: rig.daemon.pid)
        let (vcpuCPUs, daemonCPUs) = placement.cpus(cpuCount: cpuCount) ?? (CPUList([]), CPUList([]))
        let label = placement.rawValue

        progress.begin("\(label) · eventfd wake-up baseline (no KVM)")
        let wakeup = WakeupBaseline.measure(placement: placement, cpuCount: cpuCount, samples: configuration.wakeupSamples)

        progress.begin("\(label) · a doorbell store nobody waits on (KVM's own cost of a kick)")
        let idleKicks = try rig.measureIdleKicks(stores: configuration.kickedRequests, rounds: configuration.costRounds)

        var gathered: [String: Gathered] = [:]
        progress.begin("\(label) · vCPU cost per request, \(configuration.costRounds) rounds of every path")
        // Cost rounds: every path once per round (the VMs of paths 4 and 5 attached for the whole phase).
        var attached: [ConnectedVM] = []
        do throws(BenchError) {
            let (polledVM, suppressed) = try rig.attachSuppressed()
            attached.append(polledVM)
            var paths = rig.requestPaths + [rig.kickedWithoutSyscall, suppressed]
            if rig.bpfMapPageUnavailable == nil {
                let (pageVM, bpfMapPage) = try rig.attachBPFMapPage()
                attached.append(pageVM)
                paths.append(bpfMapPage)
            }
            try placement.apply(cpuCount: cpuCount, vcpuThreads: attached.map { Int32($0.vcpus[0].threadID) }, daemonPID: nil)
            for round in 0..<max(configuration.costRounds, 1) {
                for path in paths {
                    let cost = try path.measureCost(requests: requestCount(path.kind), rounds: 1, timeout: .seconds(120))
                    gathered[path.name, default: Gathered()].costs.append(cost)
                }
                progress.update(round + 1, of: configuration.costRounds)
            }
        } catch {
            for vm in attached { _ = try? vm.detach() }
            throw error
        }
        for vm in attached { _ = try? vm.detach() }

        // Latency rounds.
        let rounds = max(configuration.latencyRounds, 1)
        for round in 0..<rounds {
            let share = configuration.latencySamples / rounds + (round < configuration.latencySamples % rounds ? 1 : 0)
            progress.begin("\(label) · request → applied, round \(round + 1)/\(rounds): \(share) timed requests per path")
            var done = 0
            try withEveryPath { (path, vm) throws(BenchError) in
                let (latency, counters, accounting) = try timed(
                    path, vm: vm, count: share, seed: seed &+ UInt64(round) << 4 &+ UInt64(path.kind.rawValue)
                ) { progress.update(done + $0, of: share * (RequestPathKind.allCases.count + 1)) }
                done += share
                gathered[path.name, default: Gathered()].latency += latency
                if let counters {
                    var total = gathered[path.name]?.daemon ?? DaemonCounters()
                    total.requests &+= counters.requests
                    total.kicks &+= counters.kicks
                    total.polls &+= counters.polls
                    total.wakeups &+= counters.wakeups
                    gathered[path.name]?.daemon = total
                }
                gathered[path.name]?.accounting += accounting
            }
        }

        func result(_ kind: RequestPathKind, name: String, title: String) -> RequestResult? {
            guard let gathered = gathered[name], let cost = RequestPath.Cost.merged(gathered.costs) else { return nil }
            var result = DoorbellBench.result(
                kind, cost: cost, latency: gathered.latency, tsc: calibration.tsc, daemon: gathered.daemon,
                accounting: gathered.accounting.perRequest(gathered.latency.samples.count, cpuCount: cpuCount))
            result.name = name
            result.title = title
            return result
        }
        var requests = RequestPathKind.allCases.compactMap { result($0, name: $0.name, title: $0.title) }
        DoorbellBench.addRatios(&requests)
        var variant = result(
            .kicked, name: RequestPathKind.kickedWithoutSyscallName, title: RequestPathKind.kickedWithoutSyscallTitle)
        if let row = variant, let path1 = requests.first(where: { $0.path == .inVMM }) {
            var pair = [path1, row]
            DoorbellBench.addRatios(&pair)
            variant = pair[1]
        }

        var reads: [ReadResult] = []
        for path in rig.readPaths {
            let count = path.kind == .mirror ? configuration.mirrorReads : configuration.exitingRequests
            progress.begin("\(label) · \(path.kind.title), \(count) back to back")
            let cost = try path.measure(reads: count, rounds: configuration.costRounds, timeout: .seconds(120))
            reads.append(ReadResult(
                path: path.kind, name: path.kind.name, title: path.kind.title, costMicroseconds: cost.microsecondsPerRead,
                costRounds: cost.rounds, ratioToMMIOInVMM: nil, exitsPerRead: cost.exitsPerRead, value: cost.value))
        }
        if let reference = reads.first(where: { $0.path == .inVMM })?.costMicroseconds, reference > 0 {
            for index in reads.indices { reads[index].ratioToMMIOInVMM = reads[index].costMicroseconds / reference }
        }
        return PlacementResults(
            placement: placement, vcpuCPUs: "\(vcpuCPUs)", daemonCPUs: "\(daemonCPUs)", requests: requests, reads: reads,
            wakeup: wakeup.latency, idleKickMicroseconds: idleKicks.mmio, idlePortKickMicroseconds: idleKicks.port,
            kickWithoutSyscall: variant)
    }

    /// Calls `body` with paths 1-3, 3′, 4 and 5 in order; the VMs of paths 4
    /// and 5 are attached (and placed) for their call only, and detached after it.
    private func withEveryPath(_ body: (RequestPath, ConnectedVM?) throws(BenchError) -> Void) throws(BenchError) {
        for path in rig.requestPaths { try body(path, rig.connectedVM(for: path.kind)) }
        try body(rig.kickedWithoutSyscall, rig.connectedVM(for: .kicked))
        func attachedForItsTurn(_ attach: () throws(BenchError) -> (ConnectedVM, RequestPath)) throws(BenchError) {
            let (vm, path) = try attach()
            defer { _ = try? vm.detach() }
            try placement.apply(cpuCount: cpuCount, vcpuThreads: [Int32(vm.vcpus[0].threadID)], daemonPID: nil)
            try body(path, vm)
        }
        try attachedForItsTurn(rig.attachSuppressed)
        if rig.bpfMapPageUnavailable == nil { try attachedForItsTurn(rig.attachBPFMapPage) }
    }

    /// `count` timed requests of `path`, with the daemon's counters and the
    /// host's accounting around them.
    private func timed(
        _ path: RequestPath, vm: ConnectedVM?, count: Int, seed: UInt64, progress update: (Int) -> Void
    ) throws(BenchError) -> (RequestPath.Latency, DaemonCounters?, HostAccounting.Delta) {
        guard count > 0 else { return (.empty, nil, HostAccounting.Delta()) }
        let accounting = HostAccounting(daemonPID: rig.daemon.pid, vcpuThread: Int32(path.vcpu.threadID), cpuCount: cpuCount)
        let perRun = configuration.samplesPerRun
        let runTimeout = Duration.seconds(10) + (configuration.maximumGap * 2 + configuration.applyTimeout) * perRun
        let beforeStatus = try? vm.map { vm throws(VMMError) in try ConnectedVM.status(of: vm.client, allVMs: false) }
        let before = beforeStatus?.vms.first?.counters
        let start = accounting.snapshot()
        let latency = try path.measureLatency(
            count: count, perRun: perRun, gapMask: gapMask,
            timeoutTicks: calibration.tsc.ticks(for: configuration.applyTimeout), seed: seed, timeout: runTimeout,
            primer: Rig.primer(for: path), progress: update)
        let end = accounting.snapshot()
        let afterStatus = try? vm.map { vm throws(VMMError) in try ConnectedVM.status(of: vm.client, allVMs: false) }
        let after = afterStatus?.vms.first?.counters
        var counters: DaemonCounters?
        if let before, let after {
            // The primer is one more request the daemon consumed: not counted
            // (path 5's daemon polls once a second: it may never see it).
            let primed: UInt64 = path.kind.reachesDaemon ? 1 : 0
            let woken = (afterStatus?.daemon.wakeups?.total).flatMap { a in
                (beforeStatus?.daemon.wakeups?.total).map { a &- $0 }
            } ?? 0
            counters = DaemonCounters(
                requests: (after.requests &- before.requests) &- min(primed, after.requests &- before.requests),
                kicks: (after.kicks &- before.kicks) &- (path.kind == .kicked ? min(primed, after.kicks &- before.kicks) : 0),
                polls: after.polls &- before.polls, wakeups: woken &- min(woken, 1))
        }
        return (latency, counters, accounting.difference(start, end))
    }

    private func requestCount(_ kind: RequestPathKind) -> UInt32 {
        switch kind {
        case .inVMM, .forwarded: return configuration.exitingRequests
        case .kicked: return configuration.kickedRequests
        case .suppressed, .bpfMapPage: return configuration.suppressedRequests
        }
    }
}
