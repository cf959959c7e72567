import Foundation
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

extension Server {
    func statusDocument(for selected: [VMSession]) -> StatusDocument {
        let daemon = StatusDocument.Daemon(
            version: Self.version, pid: getpid(),
            uptimeSeconds: Double(MonotonicClock.nowNanoseconds() - startTime) / 1e9,
            actuators: actuatorSummary, actuatorNotes: plan.notes,
            capabilities: [
                "uclamp": capabilities.uclamp.description, "cgroup_uclamp": capabilities.cgroupUclamp.description,
                "eevdf_slice": capabilities.eevdfSlice.description, "nice": capabilities.nice.description,
                "affinity": capabilities.affinity.description, "bpf_map": capabilities.bpfMap.description,
            ],
            bpf: bpf.summary, dryRun: configuration.dryRun, connections: connections.count, vcpus: attachedVCPUs,
            recoveredThreads: recoveredThreads)
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
        return StatusDocument.VM(
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

    /// Rewrites the Prometheus text file atomically (temp file + rename), so
    /// a scraper never reads half a file.
    func writeMetrics() {
        guard let path = configuration.metricsPath else { return }
        let text = PrometheusText.render(status: statusDocument(for: sessions.values.sorted { $0.id < $1.id }))
        let temporary = path + ".tmp"
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
            if rename(temporary, path) != 0 {
                throw ServerError("rename: \(String(cString: strerror(errno)))")
            }
        } catch {
            logger.warning("cannot write metrics", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }
}

/// The Prometheus text exposition of a status document.
enum PrometheusText {
    static func render(status: StatusDocument) -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(labels: String, value: String)]) {
            out += "# HELP vcpufreq_\(name) \(help)\n# TYPE vcpufreq_\(name) \(type)\n"
            for sample in samples { out += "vcpufreq_\(name)\(sample.labels.isEmpty ? "" : "{\(sample.labels)}") \(sample.value)\n" }
        }
        func label(_ text: String) -> String {
            text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                .replacingOccurrences(of: "\n", with: "\\n")
        }
        family("up_seconds", "gauge", "Seconds since the daemon started.", [("", String(status.daemon.uptimeSeconds))])
        family("vms", "gauge", "Attached VMs.", [("", "\(status.vms.count)")])
        family("vcpus", "gauge", "Attached vCPUs.", [("", "\(status.daemon.vcpus)")])
        family("recovered_threads", "gauge", "Threads restored at start from a killed daemon's journal.",
               [("", "\(status.daemon.recoveredThreads)")])
        var perVCPU: [String: [(String, String)]] = [:]
        var perVM: [String: [(String, String)]] = [:]
        for vm in status.vms {
            let vmLabel = "vm=\"\(label(vm.name))\""
            perVM["kicks_total", default: []].append((vmLabel, "\(vm.counters.kicks)"))
            perVM["polls_total", default: []].append((vmLabel, "\(vm.counters.polls)"))
            perVM["accesses_total", default: []].append((vmLabel, "\(vm.counters.accesses)"))
            perVM["restores_total", default: []].append((vmLabel, "\(vm.counters.restores)"))
            perVM["polling", default: []].append((vmLabel, vm.polling ? "1" : "0"))
            for (kind, count) in vm.invalidAccesses.sorted(by: { $0.key < $1.key }) {
                perVM["invalid_accesses_total", default: []].append(("\(vmLabel),kind=\"\(kind)\"", "\(count)"))
            }
            for vcpu in vm.vcpus {
                let labels = "\(vmLabel),vcpu=\"\(vcpu.index)\""
                perVCPU["requests_total", default: []].append((labels, "\(vcpu.requests)"))
                perVCPU["hints_applied_total", default: []].append((labels, "\(vcpu.hintsApplied)"))
                perVCPU["actuation_errors_total", default: []].append((labels, "\(vcpu.actuationErrors)"))
                perVCPU["util_min", default: []].append((labels, "\(vcpu.utilMin ?? 0)"))
                perVCPU["util_max", default: []].append((labels, "\(vcpu.utilMax ?? 1024)"))
                perVCPU["cur_perf_khz", default: []].append((labels, "\(vcpu.currentPerformanceKHz)"))
            }
        }
        let help = [
            "kicks_total": ("counter", "Doorbell kicks received."), "polls_total": ("counter", "Polls of the shared page."),
            "accesses_total": ("counter", "Forwarded register accesses."), "restores_total": ("counter", "Threads restored."),
            "polling": ("gauge", "1 while kicks are suppressed."), "invalid_accesses_total": ("counter", "Invalid guest accesses by kind."),
            "requests_total": ("counter", "Guest requests per vCPU."), "hints_applied_total": ("counter", "Hint changes applied per vCPU."),
            "actuation_errors_total": ("counter", "Failed hint applications per vCPU."), "util_min": ("gauge", "Applied util_min."),
            "util_max": ("gauge", "Applied util_max."), "cur_perf_khz": ("gauge", "cur_perf the guest reads, kHz."),
        ]
        for (name, samples) in perVM.sorted(by: { $0.key < $1.key }) {
            family(name, help[name]!.0, help[name]!.1, samples.map { (labels: $0.0, value: $0.1) })
        }
        for (name, samples) in perVCPU.sorted(by: { $0.key < $1.key }) {
            family(name, help[name]!.0, help[name]!.1, samples.map { (labels: $0.0, value: $0.1) })
        }
        return out
    }
}
