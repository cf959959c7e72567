import Foundation

/// The design's targets judged against a run, and where the time goes,
/// stated from the run's own numbers (the same sentences come out of any
/// machine; bench/doorbell.md holds the analysis of the published run).
public enum Findings {
    /// The design brief's limits ("Performance targets").
    public static let kickedCostRatioLimit = 0.25
    public static let suppressedCostRatioLimit = 0.05
    public static let kickLatencyP99LimitMicroseconds = 50.0

    /// Every target in every placement.
    public static func targets(_ placements: [PlacementResults]) -> [TargetVerdict] {
        var verdicts: [TargetVerdict] = []
        for placement in placements {
            if let ratio = placement.request(.kicked)?.costRatioToPath1 {
                verdicts.append(.init(
                    target: "path 3 (kick) vCPU cost ≤ 0.25 × path 1", placement: placement.placement, value: ratio,
                    limit: kickedCostRatioLimit, unit: "× path 1", met: ratio <= kickedCostRatioLimit))
            }
            if let ratio = placement.request(.suppressed)?.costRatioToPath1 {
                verdicts.append(.init(
                    target: "path 4 (no kick) vCPU cost ≤ 0.05 × path 1", placement: placement.placement, value: ratio,
                    limit: suppressedCostRatioLimit, unit: "× path 1", met: ratio <= suppressedCostRatioLimit))
            }
            if let mirror = placement.read(.mirror) {
                verdicts.append(.init(
                    target: "cur_perf from the mirror: zero exits", placement: placement.placement,
                    value: mirror.exitsPerRead, limit: 0, unit: "exits/read", met: mirror.exitsPerRead == 0))
            }
            if let page = placement.request(.bpfMapPage) {
                let exits = page.exitsPerRequest + page.kicksPerRequest + page.timedExitsPerRequest + page.timedKicksPerRequest
                verdicts.append(.init(
                    target: "path 5 (BPF-map page): zero exits and kicks", placement: placement.placement, value: exits,
                    limit: 0, unit: "exits + kicks/request", met: exits == 0))
            }
            if let kicked = placement.request(.kicked), let latency = kicked.latency {
                let met = latency.p99 <= kickLatencyP99LimitMicroseconds && kicked.abandoned == 0
                verdicts.append(.init(
                    target: "kick → hint applied p99 ≤ 50 µs", placement: placement.placement, value: latency.p99,
                    limit: kickLatencyP99LimitMicroseconds, unit: "µs", met: met))
            }
        }
        return verdicts
    }

    /// Sentences about where the time goes, from the numbers of `results`.
    public static func explain(_ results: DoorbellResults) -> [String] {
        var lines: [String] = []
        func f(_ value: Double) -> String { Report.number(value) }
        func percent(_ share: Double) -> String { "\(Int((share * 100).rounded())) %" }
        for placement in results.placements {
            let name = placement.placement.rawValue
            guard let kicked = placement.request(.kicked), let latency = kicked.latency,
                let inVMM = placement.request(.inVMM)
            else { continue }
            // The vCPU's side of a kick.
            var cost = "\(name): a kick costs the vCPU \(f(kicked.costMicroseconds)) µs back to back "
                + "(\(f(kicked.costRatioToPath1 ?? 0)) × path 1's \(f(inVMM.costMicroseconds)) µs)"
            if let idle = placement.idleKickMicroseconds, inVMM.costMicroseconds > 0 {
                cost += "; \(f(idle)) µs of it is KVM's own cost of the store (an ioeventfd nobody waits on: "
                    + "\(f(idle / inVMM.costMicroseconds)) × path 1 before anything is woken), the rest is waking the daemon"
            }
            if let spaced = kicked.spacedRequestCost {
                cost += "; a kick that finds the daemon asleep costs p50 \(f(spaced.p50)) µs"
            }
            lines.append(cost + ".")
            // The host's side: who ran, who waited.
            var applied = "\(name): kick → applied p50 \(f(latency.p50)) / p99 \(f(latency.p99)) µs"
            if let a = kicked.accounting {
                applied += "; per request the daemon ran \(f(a.daemonCPUMicrosecondsPerRequest)) µs and waited "
                    + "\(f(a.daemonRunQueueMicrosecondsPerRequest)) µs for a CPU, the vCPU was kept off its CPU "
                    + "\(f(a.vcpuRunQueueMicrosecondsPerRequest)) µs; other processes kept \(percent(a.otherLoadShare)) "
                    + "of the CPUs busy, steal \(percent(a.stealShare))"
            }
            if let wakeup = placement.wakeup {
                applied += "; an eventfd wake-up without KVM takes p50 \(f(wakeup.p50)) / p99 \(f(wakeup.p99)) µs here"
            }
            lines.append(applied + ".")
            if let a = kicked.latencyOfA, let b = kicked.latencyOfB {
                lines.append("\(name): requests that set the short slice (A) p50 \(f(a.p50)) / p99 \(f(a.p99)) µs, "
                    + "requests that clear it (B) p50 \(f(b.p50)) / p99 \(f(b.p99)) µs.")
            }
            if let quiet = placement.kickWithoutSyscall, let quietLatency = quiet.latency,
                let loud = kicked.accounting, let calm = quiet.accounting
            {
                lines.append("\(name): without the latency flag (no slice to change: \(syscallsWithoutSlice(results.daemonActuators))) "
                    + "a kick is applied after p50 \(f(quietLatency.p50)) / p99 \(f(quietLatency.p99)) µs "
                    + "and the daemon runs \(f(calm.daemonCPUMicrosecondsPerRequest)) µs per request instead of "
                    + "\(f(loud.daemonCPUMicrosecondsPerRequest)): the sched_setattr on the vCPU thread costs "
                    + "\(f(loud.daemonCPUMicrosecondsPerRequest - calm.daemonCPUMicrosecondsPerRequest)) µs of daemon CPU.")
            }
            if kicked.abandoned > 0 {
                lines.append("\(name): \(kicked.abandoned) kicked requests were not applied within "
                    + "\(f(results.settings.applyTimeoutMicroseconds)) µs.")
            }
        }
        let ranked = results.placements.compactMap { p in p.request(.kicked)?.latency.map { (p.placement, $0) } }
            .sorted { $0.1.p99 < $1.1.p99 }
        if let best = ranked.first, let worst = ranked.last, ranked.count > 1 {
            lines.append("Lowest kick p99 with placement \(best.0.rawValue) (\(f(best.1.p99)) µs), highest with "
                + "\(worst.0.rawValue) (\(f(worst.1.p99)) µs).")
        }
        for placement in results.placements {
            let name = placement.placement.rawValue
            if let forwarded = placement.request(.forwarded)?.latency, let inVMM = placement.request(.inVMM)?.latency {
                lines.append("\(name): forwarding set_perf to the daemon adds \(f(forwarded.p50 - inVMM.p50)) µs at the "
                    + "median over handling it in the VMM (\(f(inVMM.p50)) → \(f(forwarded.p50)) µs).")
            }
            if let suppressed = placement.request(.suppressed)?.latency {
                lines.append("\(name): with kicks suppressed a request waits for the next poll: p50 \(f(suppressed.p50)) "
                    + "/ p99 \(f(suppressed.p99)) µs against a poll interval of "
                    + "\(f(Double(results.settings.pollIntervalMicroseconds))) µs.")
            }
            if let page = placement.request(.bpfMapPage), let seen = page.latency {
                var line = "\(name): on a BPF-map page the guest saw a host BPF program's sched_seen show its request after "
                    + "p50 \(f(seen.p50)) / p99 \(f(seen.p99)) µs (the program reads at the vCPU thread's next switch or tick; "
                    + "the guest sees it when it next runs"
                if let a = page.accounting {
                    line += ": the vCPU was kept off its CPU \(f(a.vcpuRunQueueMicrosecondsPerRequest)) µs per request"
                }
                line += "), for \(f(page.costMicroseconds)) µs of vCPU time "
                    + "and \(f(page.exitsPerRequest)) exits, \(f(page.kicksPerRequest)) kicks per request"
                if let woken = page.daemon?.wakeupsPerRequest {
                    line += "; the daemon woke \(f(woken)) times per request"
                    if let kicked = placement.request(.kicked)?.daemon?.wakeupsPerRequest {
                        line += " (\(f(kicked)) with a kick, path 3)"
                    }
                }
                if page.abandoned > 0 { line += "; \(page.abandoned) were never seen within the timeout" }
                lines.append(line + ".")
            }
        }
        if results.inVMMDevice.uclampFailures > 0 {
            lines.append("Path 1's crosvm-style uclamp sched_setattr failed \(results.inVMMDevice.uclampFailures) times "
                + "(errno \(results.inVMMDevice.lastUclampErrno): this kernel has no uclamp); its EEVDF slice call "
                + "succeeded \(results.inVMMDevice.sliceChanges) times.")
        }
        return lines
    }
}

extension Findings {
    /// What the daemon still calls per kicked request when no slice changes:
    /// its clamp actuator's system call, if it has one ("clamp=bpf-map" in
    /// the daemon's actuator summary: one `bpf` map update).
    public static func syscallsWithoutSlice(_ actuators: String) -> String {
        let clamp = actuators.split(whereSeparator: { $0 == " " || $0 == ";" })
            .first { $0.hasPrefix("clamp=") }.map { String($0.dropFirst("clamp=".count)) }
        switch clamp {
        case "none": return "the daemon makes no system call on this host"
        case "bpf-map": return "the daemon's only system call is the BPF util-hint map update"
        case let clamp?: return "the daemon's only system call is its clamp actuator's (\(clamp))"
        case nil: return "the daemon calls only its clamp actuator"
        }
    }
}
