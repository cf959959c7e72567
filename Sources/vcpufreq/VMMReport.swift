import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqVMM

/// The text `vcpufreq vmm` prints for a `ProgramReport`.
enum VMMReport {
    /// `perVCPU`: every phase row by row for each vCPU, and the exits of the
    /// whole run by reason; otherwise one row per phase (vCPU 0's request as
    /// the example, totals, the median time per op over the vCPUs).
    static func render(_ report: ProgramReport, socketPath: String, perVCPU: Bool) -> String {
        let a = report.attachment
        var out = "vcpufreq vmm: VM \"\(report.vmName)\" (profile \(a.profile), \(report.vcpuCount) vCPUs, id \(a.vmID)) "
            + "on \(socketPath)\n"
        var mapped: [String] = []
        if report.sharedPage { mapped.append("shared page") }
        if report.mirror { mapped.append("read-only register mirror") }
        if report.doorbells { mapped.append("\(report.vcpuCount) doorbells (ioeventfd)") }
        out += "  device base 0x\(String(a.baseAddress, radix: 16)); mapped: \(mapped.isEmpty ? "nothing (every access forwarded)" : mapped.joined(separator: ", "))\n"
        out += "  daemon actuators: \(a.actuators)"
        if let status = report.status { out += "; kick mode \(status.kickMode)\(status.polling ? " (polling at the end of the run)" : "")" }
        out += "\n  guest program \"\(report.program.rawValue)\": \(report.program.summary)\n"
        out += "  time per op: host-side, (run time − an empty run's) / operations, every vCPU running at once\n"

        if let probe = report.probe { out += "\n" + render(probe) }
        if perVCPU {
            for phase in report.phases { out += "\n" + render(phase) }
        } else if !report.phases.isEmpty {
            out += "\n" + renderCompact(report.phases)
        }
        out += "\n" + renderOutcomes(report, perVCPU: perVCPU)
        if let status = report.status, !status.invalidAccesses.isEmpty {
            out += "invalid accesses the daemon counted: "
                + status.invalidAccesses.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") + "\n"
        }
        if let failure = report.forwardingFailure { out += "forwarding failed (guests read 0): \(failure)\n" }
        return out
    }

    static func render(_ probe: DriverProbe) -> String {
        var out = "driver probe on vCPU 0 (perftbl_len of every CPU, then per policy sel/rd of each entry and perf_domain of every CPU):\n"
        for policy in probe.policies {
            let table = policy.tableKHz.map(String.init).joined(separator: " ")
            out += "  policy of cpu \(policy.cpu): cpus \(policy.cpus.map(String.init).joined(separator: ",")), "
                + "perf_domain \(policy.domain), \(policy.tableKHz.count) entries: \(table) kHz\n"
        }
        out += "  \(probe.exits.total) exits (\(probe.exits.mmioReads) reads, \(probe.exits.mmioWrites) writes; "
            + "\(probe.forwarding.syncWrites) sync perftbl_sel), \(format(probe.duration))\n"
        return out
    }

    static func render(_ phase: ProgramReport.Phase) -> String {
        var out = phase.title + "\n"
        out += "  " + pad("vcpu", 6) + pad("guest asked", 52) + pad("exits", 16) + pad("forwarded", 18) + pad("kicks", 8) + "time per op\n"
        for v in phase.vcpus {
            let exits = v.exits.total == 0 ? "0" : "\(v.exits.mmioReads) R, \(v.exits.mmioWrites) W"
            let f = v.forwarding
            var forwarded = "-"
            if f.forwarded > 0 {
                forwarded = [(f.reads, "read"), (f.postedWrites, "posted"), (f.syncWrites, "sync")]
                    .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            }
            let kicks = v.doorbellWrites.map(String.init) ?? "-"
            let cost = v.failure.map { "failed: \($0)" } ?? v.nanosecondsPerOperation.map(formatNanoseconds) ?? "-"
            out += "  " + pad("\(v.vcpu)", 6) + pad(v.asked, 52) + pad(exits, 16) + pad(forwarded, 18) + pad(kicks, 8) + cost + "\n"
        }
        return out
    }

    static func renderCompact(_ phases: [ProgramReport.Phase]) -> String {
        var out = "phases, every vCPU at once (vCPU 0's request shown; kicks = doorbell writes; time per op = median over vCPUs):\n"
        out += "  " + pad("phase", 18) + pad("vCPU 0 asked", 50) + pad("exits/op", 10) + pad("forwarded", 20) + pad("kicks", 14)
            + "time per op\n"
        for phase in phases {
            let operations = phase.vcpus.reduce(UInt64(0)) { $0 + $1.operations }
            let exits = phase.vcpus.reduce(UInt64(0)) { $0 + $1.exits.total }
            let f = phase.vcpus.reduce(ForwardingCounts()) { total, v in
                var sum = total
                sum.reads += v.forwarding.reads
                sum.postedWrites += v.forwarding.postedWrites
                sum.syncWrites += v.forwarding.syncWrites
                return sum
            }
            var forwarded = [(f.reads, "read"), (f.postedWrites, "posted"), (f.syncWrites, "sync")]
                .filter { $0.0 > 0 }.map { "\($0.0) \($0.1)" }.joined(separator: ", ")
            if forwarded.isEmpty { forwarded = "-" }
            var kicks = "-"
            if phase.vcpus.contains(where: { $0.doorbellWrites != nil }) {
                kicks = "\(phase.vcpus.reduce(UInt64(0)) { $0 + ($1.doorbellWrites ?? 0) }) of \(operations)"
            }
            let costs = phase.vcpus.compactMap(\.nanosecondsPerOperation).sorted()
            let failures = phase.vcpus.compactMap(\.failure)
            let cost = failures.first.map { "failed: \($0)" } ?? (costs.isEmpty ? "-" : formatNanoseconds(costs[costs.count / 2]))
            let perOp = operations == 0 ? "-" : String(format1: Double(exits) / Double(operations)).replacingZero
            out += "  " + pad(phase.name, 18) + pad(phase.vcpus.first?.asked ?? "-", 50) + pad(perOp, 10) + pad(forwarded, 20)
                + pad(kicks, 14) + cost + "\n"
        }
        return out
    }

    static func renderOutcomes(_ report: ProgramReport, perVCPU: Bool) -> String {
        var out = "what the daemon applied (shared page host area, STATUS):\n"
        out += "  " + pad("vcpu", 6) + pad("tid", 8) + pad("requests", 10) + pad("kicks", 7) + pad("last request", 40)
            + pad("cur_perf kHz", 14) + pad("util_min", 10) + pad("util_max", 10) + pad("latency", 14) + "flags\n"
        for o in report.outcomes {
            let s = o.status
            let area = o.hostArea
            var flags: [String] = []
            if let area {
                if area.flags.contains(.kick) { flags.append("kick wanted") }
                if area.flags.contains(.capped) { flags.append("capped") }
                if area.flags.contains(.rejected) { flags.append("rejected") }
                if area.flags.contains(.actuationFailed) { flags.append("actuation failed") }
            }
            let utilMin = area.map { "\($0.utilMin)" } ?? s?.utilMin.map(String.init) ?? "-"
            let utilMax = area.map { "\($0.utilMax)" } ?? s?.utilMax.map(String.init) ?? "-"
            let perf = area.map { "\($0.currentPerformanceKHz)" } ?? s.map { "\($0.currentPerformanceKHz)" } ?? "-"
            out += "  " + pad("\(o.vcpu)", 6) + pad("\(o.threadID)", 8) + pad(s.map { "\($0.requests)" } ?? "-", 10)
                + pad(s.map { "\($0.kicks)" } ?? "-", 7) + pad(s?.lastRequest ?? "-", 40) + pad(perf, 14)
                + pad(utilMin, 10) + pad(utilMax, 10) + pad(s?.latency ?? "-", 14)
                + (flags.isEmpty ? "-" : flags.joined(separator: ", ")) + "\n"
        }
        guard perVCPU else {
            let exits = report.outcomes.map(\.exits.total)
            let forwarded = report.outcomes.reduce(UInt64(0)) { $0 + $1.forwarding.forwarded }
            let waited = report.outcomes.reduce(UInt64(0)) { $0 + $1.forwarding.nanoseconds }
            out += "exits per vCPU: \(exits.map(String.init).joined(separator: ", ")); \(forwarded) forwarded to the daemon"
            if forwarded > 0 { out += ", \(formatNanoseconds(Double(waited) / Double(forwarded))) waiting for it each" }
            return out + "\n"
        }
        out += "exits of the whole run, per vCPU (by reason), and the host time spent forwarding them:\n"
        for o in report.outcomes {
            out += "  vcpu \(o.vcpu): \(o.exits); \(o.forwarding.forwarded) forwarded, "
                + "\(formatNanoseconds(Double(o.forwarding.nanoseconds))) waiting for the daemon"
            if o.forwarding.forwarded > 0 {
                out += " (\(formatNanoseconds(Double(o.forwarding.nanoseconds) / Double(o.forwarding.forwarded))) each)"
            }
            out += "\n"
        }
        return out
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    static func formatNanoseconds(_ nanoseconds: Double) -> String {
        if nanoseconds < 1_000 { return String(format1: nanoseconds) + " ns" }
        if nanoseconds < 1_000_000 { return String(format1: nanoseconds / 1_000) + " µs" }
        return String(format1: nanoseconds / 1_000_000) + " ms"
    }

    static func format(_ duration: Duration) -> String {
        formatNanoseconds(Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9)
    }
}

extension String {
    /// "0.0" → "0" (an exit count per op that is exactly zero reads better so).
    var replacingZero: String { self == "0.0" ? "0" : self }

    /// One decimal, without Foundation.
    init(format1 value: Double) {
        let tenths = (value * 10).rounded()
        guard tenths.isFinite, abs(tenths) < 1e15 else {
            self = "\(value)"
            return
        }
        let whole = Int64(tenths) / 10
        let fraction = abs(Int64(tenths) % 10)
        self = "\(whole).\(fraction)"
    }
}
