import Foundation
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

extension Server {
    func statusDocument(for selected: [VMSession]) -> StatusDocument {
        var daemon = StatusDocument.Daemon(
            version: Self.version, pid: getpid(),
            uptimeSeconds: Double(MonotonicClock.nowNanoseconds() - startTime) / 1e9,
            actuators: actuatorSummary, actuatorNotes: plan.notes,
            capabilities: [
                "uclamp": capabilities.uclamp.description, "cgroup_uclamp": capabilities.cgroupUclamp.description,
                "eevdf_slice": capabilities.eevdfSlice.description, "nice": capabilities.nice.description,
                "affinity": capabilities.affinity.description, "bpf_map": capabilities.bpfMap.description,
                "bpf_map_page": bpf.pageCapability.description,
            ],
            bpf: bpf.summary, dryRun: configuration.dryRun, connections: connections.count, vcpus: attachedVCPUs,
            recoveredThreads: recoveredThreads)
        daemon.wakeups = wakeups
        return bpf.withHostTruth(StatusDocument(daemon: daemon, vms: selected.map(vmStatus)))
    }

    private func vmStatus(_ session: VMSession) -> StatusDocument.VM {
        let device = session.device.counters
        let counters = session.counters
        var invalid: [String: UInt64] = [:]
        for kind in InvalidAccess.allCases {
            let count = device[kind] &+ (session.shared?.host.counters[kind] ?? 0)
            if count > 0 { invalid[kind.description] = count }
        }
        let vcpus = (0..<session.vcpuCount).map { vcpu -> StatusDocument.VCPU in
            let hint = session.applied[vcpu]
            return StatusDocument.VCPU(
                index: vcpu, tid: session.threads[vcpu].target.tid, domain: session.model.vcpus[vcpu].performanceDomain,
                lastRequest: session.lastRequests[vcpu].map(Self.describe), utilMin: hint?.utilMin, utilMax: hint?.utilMax,
                latency: hint?.latency.description, cpus: hint?.affinity?.description,
                currentPerformanceKHz: session.device.currentPerformanceKHz(vcpu: vcpu),
                capped: session.policy.state(vcpu: vcpu).isCapped, requests: counters.requests[vcpu],
                kicks: counters.kicks[vcpu], hintsApplied: counters.hintsApplied[vcpu],
                invalidAccesses: device.invalid(vcpu: vcpu), actuationErrors: counters.actuationErrors[vcpu])
        }
        var vm = StatusDocument.VM(
            id: session.id, name: session.name, profile: session.profile, peerPID: session.peer.pid,
            peerUID: session.peer.uid, actuators: actuatorSummary(for: session.model), kickMode: session.model.policy.kickMode.rawValue,
            polling: session.kicks.isPolling, sharedMapped: session.shared != nil,
            mirrorMapped: session.shared?.hasMirror ?? false,
            counters: StatusDocument.Counters(
                accesses: device.accesses, requests: counters.requests.reduce(0, &+), kicks: counters.kicks.reduce(0, &+),
                polls: counters.polls, invalidAccesses: invalid.values.reduce(0, &+),
                actuationErrors: counters.actuationErrors.reduce(0, &+), threadsGone: counters.threadsGone,
                restores: counters.restores),
            invalidAccesses: invalid, vcpus: vcpus)
        vm.sharedPage = session.shared.map { $0.kind.name }
        vm.sharedPageNote = session.shared?.kind == .bpfMap ? nil : session.sharedPageNote
        return vm
    }

    /// `set_perf 1803000 kHz`, `util_hint 512`, `shared_page util 600 boost latency`.
    static func describe(_ request: GuestRequest) -> String {
        var parts = [request.source.rawValue]
        if let kHz = request.performanceKHz { parts.append("\(kHz) kHz") }
        if let util = request.utilization { parts.append("util \(util)") }
        if request.boost { parts.append("boost") }
        if request.latencySensitive == true { parts.append("latency") }
        return parts.joined(separator: " ")
    }

    // MARK: Metrics

    /// Hands the current status to the metrics writer (rendered and written
    /// off the loop); `waiting` at shutdown, so the last state is on disk.
    func writeMetrics(waiting: Bool = false) {
        guard let metricsWriter else { return }
        let document = statusDocument(for: sessions.values.sorted { $0.id < $1.id })
        if waiting { metricsWriter.flush(document) } else { metricsWriter.submit(document) }
    }
}
