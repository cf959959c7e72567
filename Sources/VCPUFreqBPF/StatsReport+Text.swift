extension StatsReport {
    /// The table `vcpufreq stats` prints: one line per vCPU, the guest's side
    /// (requested, applied) first, then the host's (time on CPU, run delay,
    /// preemptions, migrations, exits).
    public func render() -> String {
        var out = "bpf: \(bpf)\n"
        if vms.isEmpty { out += "no VMs attached\n" }
        for vm in vms {
            out += "\nvm \"\(vm.name)\" (id \(vm.id), profile \(vm.profile))\n"
            out += "  " + Self.columns.map { Self.pad($0.title, $0.width) }.joined() + "exits/s\n"
            for vcpu in vm.vcpus {
                let cells = Self.cells(vcpu)
                out += "  " + zip(cells, Self.columns).map { Self.pad($0, $1.width) }.joined()
                    + (vcpu.host.map { Self.exits($0.exitsPerSecond) } ?? "-") + "\n"
                if let guest = vcpu.host?.guest { out += "        " + Self.guest(guest) + "\n" }
            }
        }
        return out
    }

    private static let columns: [(title: String, width: Int)] = [
        ("vcpu", 6), ("tid", 9), ("requested", 22), ("applied", 22), ("on-cpu", 8), ("delay p50", 11),
        ("p99", 11), ("mean", 10), ("invol/s", 9), ("migr", 6),
    ]

    private static func cells(_ vcpu: VCPU) -> [String] {
        var applied = "-"
        if let low = vcpu.utilMin, let high = vcpu.utilMax {
            applied = "\(low)..\(high)" + (vcpu.latency.map { $0 == "none" ? "" : " \($0)" } ?? "")
        }
        let guest = ["\(vcpu.index)", "\(vcpu.tid)", vcpu.requested ?? "-", applied]
        guard let host = vcpu.host else { return guest + Array(repeating: "-", count: columns.count - guest.count) }
        func bound(_ microseconds: UInt64?) -> String {
            guard let microseconds else { return "-" }
            return microseconds == .max ? ">35 min" : "<\(microseconds) us"
        }
        return guest + [
            fixed(host.runtimeShare * 100, digits: 1) + "%", bound(host.runDelayP50Microseconds),
            bound(host.runDelayP99Microseconds), host.runDelayMeanMicroseconds.map { fixed($0, digits: 1) + " us" } ?? "-",
            fixed(Double(host.involuntarySwitches) / host.intervalSeconds, digits: 1), "\(host.migrations)",
        ]
    }

    /// The guest's requests as the host's BPF programs saw them at the vCPU's
    /// scheduling events: "guest at switches/ticks (bpf): 42 reads, 10 new, util mean 523.4 (last 600), latency 40.0%".
    static func guest(_ g: GuestInterval) -> String {
        var text = "guest at switches/ticks (bpf): \(g.reads) reads, \(g.newRequests) new"
        if let mean = g.meanUtilization {
            text += ", util mean \(fixed(mean, digits: 1))" + (g.lastUtilization.map { " (last \($0))" } ?? "")
        }
        if g.latencyShare > 0 { text += ", latency \(fixed(g.latencyShare * 100, digits: 1))%" }
        if g.boostShare > 0 { text += ", boost \(fixed(g.boostShare * 100, digits: 1))%" }
        if g.capped > 0 { text += ", capped \(g.capped)" }
        if g.rejected > 0 { text += ", rejected \(g.rejected)" }
        if g.busy > 0 { text += ", busy \(g.busy)" }
        return text
    }

    /// "1000.0 (MMIO 995.0, INTR 5.0)": every return to the VMM, then by reason.
    private static func exits(_ rates: ExitRates) -> String {
        guard rates.userspace > 0 || rates.kvm > 0 else { return "0" }
        var parts = rates.byReason.map { "\($0.name) \(fixed($0.perSecond, digits: 1))" }
        if rates.interrupted > 0 { parts.append("EINTR \(fixed(rates.interrupted, digits: 1))") }
        var text = fixed(rates.userspace, digits: 1)
        if !parts.isEmpty { text += " (" + parts.joined(separator: ", ") + ")" }
        if rates.kvm > 0 { text += ", kvm_exit \(fixed(rates.kvm, digits: 1))" }
        return text
    }

    static func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }

    /// `value` with `digits` decimals (no Foundation in this module).
    static func fixed(_ value: Double, digits: Int) -> String {
        guard value.isFinite else { return "\(value)" }
        var scale = 1.0
        for _ in 0..<max(0, digits) { scale *= 10 }
        let scaled = (abs(value) * scale).rounded()
        guard scaled < 9e18 else { return "\(value)" }
        let integer = UInt64(scaled)
        let whole = integer / UInt64(scale)
        let fraction = integer % UInt64(scale)
        var text = (value < 0 && integer != 0 ? "-" : "") + "\(whole)"
        if digits > 0 {
            let digitsText = "\(fraction)"
            text += "." + String(repeating: "0", count: digits - digitsText.count) + digitsText
        }
        return text
    }
}
