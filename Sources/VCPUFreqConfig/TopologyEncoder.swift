import VCPUFreqCore

extension TopologyFile {
    /// Topology → commented TOML that `decode` reads back to an equal
    /// topology. Every key is written, defaults included, so an operator
    /// sees each knob where it can be changed.
    ///
    /// - Parameter header: comment lines put at the top (without `#`).
    public static func encode(_ topology: Topology, header: [String] = []) -> String {
        var out = TOMLWriter()
        for line in header { out.comment(line) }
        out.comment("vcpufreq topology file; every key is described in docs/topology.md.")
        out.comment("Check it with `vcpufreq topology check FILE`.")
        out.blank()

        let host = topology.host
        out.line("[host]")
        out.key("name", quoted(host.name), "free text")
        if let governor = host.governor {
            out.key("governor", quoted(governor.rawValue), "cpufreq governor; schedutil turns on headroom compensation")
        }
        if let possible = host.possibleCPUs {
            out.key("cpus", quoted(possible.description), "every host CPU; each must be in exactly one cluster")
        }

        for cluster in host.clusters {
            out.blank()
            out.line("[[host.cluster]]")
            out.key("name", quoted(cluster.name))
            out.key("cpus", quoted(cluster.cpus.description))
            out.key("capacity", "\(cluster.capacity)", "cpu_capacity of the fastest state, 0...1024")
            out.array("frequencies_khz", cluster.frequenciesKHz.map(String.init), perLine: 8, "ascending, kHz, at most 64")
            if cluster.isNominal {
                out.key("nominal", "true", "not the host's real table: the host has no cpufreq driver")
            }
        }

        for vm in topology.vms {
            out.blank()
            out.line("[[vm]]")
            out.key("name", quoted(vm.name))
            out.key("vcpus", "\(vm.vcpuCount)")
            out.array("clusters", vm.clusters.map(quoted), perLine: 8, "host cluster each vCPU models")
            if let pins = vm.pinCPUs {
                out.array(
                    "pin_cpus", pins.map { pin in pin.map { $0.isEmpty ? "[]" : quoted($0.description) } ?? "\"\"" },
                    perLine: 8, "host CPUs per vCPU; \"\" = its cluster's CPUs")
            }
            if let domains = vm.domains {
                out.array("domains", domains.map(String.init), perLine: 16, "performance domain per vCPU")
            }
            out.key("pin", vm.pin ? "true" : "false", "pin each vCPU thread to its host CPUs")
            out.key("util_cap", "\(vm.utilCap)", "highest utilization any vCPU may obtain, 0...1024")
            out.key("headroom", quoted(vm.headroom.rawValue), "schedutil|none|auto")
            out.key("table_mode", quoted(vm.tableMode.rawValue), "table|max-only")
            out.key("base_address", "0x\(String(vm.baseAddress, radix: 16))", "guest-physical base of the device")

            let policy = vm.policy
            out.blank()
            out.line("[vm.policy]")
            out.key("hysteresis", "\(policy.hysteresis)", "utilization steps smaller than this are not re-applied")
            out.key("min_interval_us", "\(policy.minimumIntervalMicroseconds)", "least time between two applied hints")
            out.key("boost_hold_ms", "\(policy.boostHoldMilliseconds)")
            out.key("boost_util", "\(policy.boostUtilization)")
            out.key("idle_decay_ms", "\(policy.idleDecayMilliseconds)", "0 = a silent vCPU keeps its hint")
            out.key("latency_hint", quoted(policy.latencyHint.rawValue), "slice|nice|none")
            out.key("latency_slice_us", "\(policy.latencySliceMicroseconds)")
            out.key("latency_nice", "\(policy.latencyNice)")
            out.key("kick_mode", quoted(policy.kickMode.rawValue), "adaptive|always|never|scheduler: when the guest rings its doorbell")
            out.key("poll_interval_us", "\(policy.pollIntervalMicroseconds)", "bound on a suppressed request's delay")
        }
        return out.text
    }

    /// A TOML basic string: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var result = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": result += "\\\""
            case "\\": result += "\\\\"
            case "\n": result += "\\n"
            case "\t": result += "\\t"
            case "\r": result += "\\r"
            default:
                if scalar.value < 0x20 || scalar.value == 0x7f {
                    let hex = String(scalar.value, radix: 16, uppercase: true)
                    result += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    result.unicodeScalars.append(scalar)
                }
            }
        }
        return result + "\""
    }
}

/// Line-oriented TOML text with aligned trailing comments.
private struct TOMLWriter {
    var text = ""

    mutating func line(_ content: String) { text += content + "\n" }
    mutating func blank() { text += "\n" }
    mutating func comment(_ content: String) { text += content.isEmpty ? "#\n" : "# \(content)\n" }

    mutating func key(_ name: String, _ value: String, _ comment: String? = nil) {
        let assignment = "\(name) = \(value)"
        guard let comment else { return line(assignment) }
        let padding = max(1, 32 - assignment.count)
        line(assignment + String(repeating: " ", count: padding) + "# " + comment)
    }

    /// A one-line array when short, else `perLine` elements per indented line.
    mutating func array(_ name: String, _ elements: [String], perLine: Int, _ comment: String? = nil) {
        if elements.count <= perLine {
            return key(name, "[" + elements.joined(separator: ", ") + "]", comment)
        }
        if let comment { self.comment("\(name): \(comment)") }
        line("\(name) = [")
        var index = 0
        while index < elements.count {
            let end = min(index + perLine, elements.count)
            line("    " + elements[index..<end].joined(separator: ", ") + ",")
            index = end
        }
        line("]")
    }
}
