import Foundation
import VCPUFreqCore

/// What a replay printed: reads in trace order, refused writes, the final
/// hints per vCPU and the invalid-access counters. Encodable as the `--json`
/// output; `text` is the human form.
struct ReplayReport: Encodable {
    /// A read (with `invalid` when it got the safe answer of an invalid
    /// access), or a refused write (`invalid` always set).
    struct Access: Encodable {
        var line: Int
        var vcpu: Int
        var offset: UInt64
        var register: String
        var width: Int
        var value: UInt64
        var invalid: String?
    }

    struct Request: Encodable {
        var source: String
        var performanceKHz: UInt32?
        var utilization: UInt32?
        var latencySensitive: Bool?
        var boost: Bool

        /// `performance_khz` after snake-casing (not `performance_k_hz`).
        enum CodingKeys: String, CodingKey {
            case source, utilization, latencySensitive, boost
            case performanceKHz = "performanceKhz"
        }
    }

    struct VCPUHint: Encodable {
        var vcpu: Int
        var domain: UInt32
        var utilMin: UInt16
        var utilMax: UInt16
        var latency: String
        var cpus: String?
        var changes: Int
        var capped: Bool
        var lastRequest: Request?
    }

    var vm: String
    var vcpus: Int
    var tableMode: String
    var stepMicroseconds: UInt64
    var reads: [Access] = []
    var refusedWrites: [Access] = []
    var notes: [String] = []
    var hints: [VCPUHint] = []
    var invalid: [String: UInt64] = [:]

    init(session: ReplaySession, stepMicroseconds: UInt64) {
        let map = session.vm.addressMap
        vm = session.vm.name
        vcpus = session.vm.vcpuCount
        tableMode = session.vm.tableMode.rawValue
        self.stepMicroseconds = stepMicroseconds
        for event in session.events {
            switch event {
            case .access(let line, let access, let result):
                let register = map.name(ofOffset: access.offset)
                if let value = access.value {
                    if let invalid = result.invalid {
                        refusedWrites.append(Access(
                            line: line, vcpu: access.vcpu, offset: access.offset, register: register, width: access.width,
                            value: value, invalid: invalid.description))
                    }
                } else {
                    reads.append(Access(
                        line: line, vcpu: access.vcpu, offset: access.offset, register: register, width: access.width,
                        value: result.value, invalid: result.invalid?.description))
                }
            case .slotFaults(let line, let slot, let faults):
                let kinds = InvalidAccess.allCases.filter { faults.contains($0) }.map(\.description)
                notes.append("line \(line): slot \(slot) corrected: \(kinds.joined(separator: ", "))")
            case .slotBusy(let line, let slot):
                notes.append("line \(line): doorbell \(slot) rang while slot \(slot) was mid-update (sequence odd)")
            case .unkickedPublication(_, let slot, _, _):
                notes.append("slot \(slot) was updated without ringing doorbell \(slot) although the host asked for kicks")
            case .hintApplied, .request:
                break
            }
        }
        for vcpu in 0..<session.vm.vcpuCount {
            let hint = session.hints[vcpu]
            let request = session.lastRequests[vcpu].map {
                Request(source: $0.source.rawValue, performanceKHz: $0.performanceKHz, utilization: $0.utilization,
                        latencySensitive: $0.latencySensitive, boost: $0.boost)
            }
            hints.append(VCPUHint(
                vcpu: vcpu, domain: session.vm.vcpus[vcpu].performanceDomain, utilMin: hint.utilMin, utilMax: hint.utilMax,
                latency: hint.latency.description, cpus: hint.affinity?.description, changes: session.hintChanges[vcpu],
                capped: session.policy.state(vcpu: vcpu).isCapped, lastRequest: request))
        }
        let counters = session.device.counters
        for kind in InvalidAccess.allCases {
            let count = counters[kind] &+ session.sharedPage.counters[kind]
            if count > 0 { invalid[kind.description] = count }
        }
    }

    var text: String {
        // Reads and refused writes interleaved in trace order.
        var ordered: [(line: Int, text: String)] = []
        for read in reads {
            var line = "line \(read.line): vcpu \(read.vcpu) r \(read.register) = \(read.value)"
            if read.value > 9 { line += " (0x\(String(read.value, radix: 16)))" }
            if let invalid = read.invalid { line += "  [invalid: \(invalid)]" }
            ordered.append((read.line, line))
        }
        for write in refusedWrites {
            ordered.append((write.line, "line \(write.line): vcpu \(write.vcpu) w \(write.register) \(write.value)  [invalid: \(write.invalid ?? "?")]"))
        }
        var lines = ordered.enumerated().sorted { ($0.element.line, $0.offset) < ($1.element.line, $1.offset) }.map(\.element.text)
        lines += notes.map { "note: \($0)" }
        lines.append("hints (vm \"\(vm)\", \(vcpus) vCPUs):")
        for hint in hints {
            var line = "  vcpu \(hint.vcpu) (domain \(hint.domain)): util_min=\(hint.utilMin) util_max=\(hint.utilMax) latency=\(hint.latency)"
            if let cpus = hint.cpus { line += " cpus=\(cpus)" }
            line += hint.capped ? " capped" : ""
            if let request = hint.lastRequest {
                let asked = request.performanceKHz.map { "\($0) kHz" } ?? request.utilization.map { "util \($0)" } ?? "-"
                line += "  <- \(request.source) \(asked)"
            }
            lines.append(line)
        }
        if !invalid.isEmpty {
            lines.append("invalid accesses: " + invalid.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let data = (try? encoder.encode(self)) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
