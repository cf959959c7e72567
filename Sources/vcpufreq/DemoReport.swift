import VCPUFreqCore

/// Runs a guest session phase by phase through a replay and narrates it:
/// what the guest asked, what the host would apply, and what it cost.
enum DemoReport {
    static func run(session: GuestSession, model: VMModel, host: HostTopology, title: String) -> String {
        var out = "== \(title)\n"
        for cluster in host.clusters {
            let table = cluster.frequenciesKHz
            out += "   host cluster \(cluster.name): CPUs \(cluster.cpus), capacity \(cluster.capacity), "
                + "\(table.count) levels \(table.first ?? 0)...\(table.last ?? 0) kHz\(cluster.isNominal ? " (nominal: no cpufreq)" : "")\n"
        }
        out += "   VM \"\(model.name)\": \(model.vcpuCount) vCPUs in \(model.domains.count) performance domains, "
            + "table mode \(model.tableMode.rawValue), util cap \(model.utilCap), schedutil headroom "
            + "\(model.compensateHeadroom ? "compensated (x0.8)" : "not compensated")\n"

        var replay = ReplaySession(vm: model, stepMicroseconds: 250)
        for phase in session.phases {
            let before = replay.hints
            let start = replay.events.count
            for line in phase.lines { replay.step(line) }
            replay.settle(line: phase.lines.last?.number ?? 0)
            let events = Array(replay.events[start...])
            out += "\n[\(phase.name)] \(phase.summary)\n"
            if phase.name == "probe" { out += probeSummary(events, model: model) }
            out += askedSummary(events)
            out += appliedSummary(before: before, after: replay.hints)
            out += costSummary(events, model: model)
        }
        out += "\nfinal hints:\n"
        for range in groups(model.vcpuCount, by: { replay.hints[$0] }) {
            out += "   vCPU \(name(range)): \(replay.hints[range.lowerBound])\n"
        }
        return out
    }

    /// What the guest driver learned: lengths, domains and table bounds.
    private static func probeSummary(_ events: [ReplayEvent], model: VMModel) -> String {
        var lengths = [UInt64](repeating: 0, count: model.vcpuCount)
        var domains = [UInt64](repeating: 0, count: model.vcpuCount)
        var entries: [UInt64] = []
        for case .access(_, let access, let result) in events where access.value == nil && result.invalid == nil {
            guard case .upstream(let vcpu, let offset) = model.addressMap.region(ofOffset: access.offset) else { continue }
            switch UpstreamABI.Register(rawValue: offset) {
            case .perftblLen: lengths[vcpu] = result.value
            case .perfDomain: domains[vcpu] = result.value
            case .perftblRd: entries.append(result.value)
            default: break
            }
        }
        var out = "   driver read perftbl_len \(lengths.map(String.init).joined(separator: " ")), "
            + "perf_domain \(domains.map(String.init).joined(separator: " "))\n"
        var index = 0
        for domain in model.domains {
            let count = Int(lengths[domain[0]])
            guard index + count <= entries.count, count > 0 else { break }
            let table = entries[index..<(index + count)]
            out += "   policy of CPUs \(CPUList(domain)): \(count == 1 ? "max-only, 1..\(table.first!)" : "\(count) levels \(table.first!)...\(table.last!)") kHz\n"
            index += count
        }
        return out
    }

    private static func askedSummary(_ events: [ReplayEvent]) -> String {
        var byVCPU: [Int: [GuestRequest]] = [:]
        for case .request(_, let request) in events { byVCPU[request.vcpu, default: []].append(request) }
        guard !byVCPU.isEmpty else { return "" }
        var out = "   asked:"
        for vcpu in byVCPU.keys.sorted() {
            let requests = byVCPU[vcpu]!
            let mixed = Set(requests.map(\.source)).count > 1
            let values = requests.map { (mixed ? $0.source.rawValue + " " : "") + describe($0) }
            let shown = values.count > 4 ? values.prefix(2) + ["..."] + values.suffix(1) : values[...]
            out += "\n     vCPU \(vcpu)\(mixed ? "" : " " + requests[0].source.rawValue): \(shown.joined(separator: " -> "))"
        }
        return out + "\n"
    }

    private static func describe(_ request: GuestRequest) -> String {
        var text = request.performanceKHz.map { "\($0) kHz" } ?? request.utilization.map { "util \($0)" } ?? "flags"
        if request.boost { text += "+boost" }
        if request.latencySensitive == true { text += "+latency" }
        return text
    }

    private static func appliedSummary(before: [HostHint], after: [HostHint]) -> String {
        let changed = (0..<after.count).filter { before[$0] != after[$0] }
        guard !changed.isEmpty else { return "   applied: no hint changed\n" }
        var out = "   applied:"
        for range in groups(after.count, by: { [before[$0], after[$0]] }) where before[range.lowerBound] != after[range.lowerBound] {
            let old = before[range.lowerBound], new = after[range.lowerBound]
            var parts: [String] = []
            if old.utilMin != new.utilMin { parts.append("util_min \(old.utilMin) -> \(new.utilMin)") }
            if old.utilMax != new.utilMax { parts.append("util_max \(old.utilMax) -> \(new.utilMax)") }
            if old.latency != new.latency { parts.append("latency \(old.latency) -> \(new.latency)") }
            if old.affinity != new.affinity { parts.append("pinned to CPUs \(new.affinity?.description ?? "any")") }
            out += "\n     vCPU \(name(range)): \(parts.joined(separator: ", "))"
        }
        return out + "\n"
    }

    /// Guest exits a real VM would take for this phase, and host syscalls.
    private static func costSummary(_ events: [ReplayEvent], model: VMModel) -> String {
        var registerExits = 0, pageStores = 0, doorbells = 0, invalid = 0, changes = 0
        for event in events {
            switch event {
            case .access(_, let access, let result):
                if result.invalid != nil { invalid += 1 }
                switch model.addressMap.region(ofOffset: access.offset) {
                case .sharedPage: pageStores += 1
                case .doorbell: doorbells += 1
                default: registerExits += 1
                }
            case .hintApplied:
                changes += 1
            default:
                break
            }
        }
        var text = "   cost: \(registerExits) register accesses (MMIO exits; cur_perf/len/domain reads need none with the read-only mirror)"
        if pageStores + doorbells > 0 { text += ", \(pageStores) shared-page loads/stores (no exit), \(doorbells) doorbell kicks (in-kernel ioeventfd)" }
        text += "; host: \(changes) hint changes to apply"
        if invalid > 0 { text += "; \(invalid) invalid accesses answered safely and counted" }
        return text + "\n"
    }

    /// Runs of consecutive vCPUs with equal keys.
    private static func groups<K: Equatable>(_ count: Int, by key: (Int) -> K) -> [ClosedRange<Int>] {
        var result: [ClosedRange<Int>] = []
        var start = 0
        while start < count {
            var end = start
            while end + 1 < count, key(end + 1) == key(start) { end += 1 }
            result.append(start...end)
            start = end + 1
        }
        return result
    }

    private static func name(_ range: ClosedRange<Int>) -> String {
        range.count == 1 ? "\(range.lowerBound)" : "\(range.lowerBound)-\(range.upperBound)"
    }
}
