/// The crosvm flags (aarch64 `crosvm run`) that give a guest the same CPU
/// view as `topology dt`: vCPU count, clusters and frequency domains,
/// pinning, capacity-dmips-mhz, per-vCPU frequency tables and the upstream
/// virtual-cpufreq device.
///
/// Syntax follows crosvm's parsers: `--cpus` takes key=value pairs whose
/// CPU sets are bracketed lists; `--cpu-affinity` separates vCPUs with `:`;
/// `--cpu-capacity` with `,`; `--cpu-frequencies-khz` separates vCPUs with
/// `;` and frequencies with `,`.
public enum CrosvmArguments {
    public struct Rendering: Equatable, Sendable {
        /// One flag per element, value included (`--cpu-capacity 0=249,1=249`),
        /// values shell-quoted where they hold `[`, `;` or other shell syntax.
        public var arguments: [String]
        /// Things the flags cannot express (printed on stderr by the CLI).
        public var notes: [String]
    }

    /// Renders the VM `vm` (the first profile when nil) of a checked topology.
    /// With `scmiSocket` the cpufreq device is SCMI over vhost-user (crosvm's
    /// `--vhost-user type=scmi`, virtio-PCI) instead of virtual-cpufreq.
    public static func render(_ topology: Topology, vm: String? = nil, scmiSocket: String? = nil) throws(TopologyError) -> Rendering {
        let model = try topology.model(forVM: vm)
        return render(model, scmiSocket: scmiSocket)
    }

    public static func render(_ model: VMModel, scmiSocket: String? = nil) -> Rendering {
        let vcpus = model.vcpus
        var notes: [String] = []

        let clusters = DeviceTree.clusterGroups(model).map(\.vcpus)
        let cpus = "num-cores=\(vcpus.count),clusters=\(sets(clusters)),freq-domains=\(sets(model.domains))"

        let affinity = vcpus.map { "\($0.index)=\($0.hostCPUs)" }.joined(separator: ":")
        if !model.pin && scmiSocket == nil {
            notes.append("the profile has pin = false, but crosvm's virtual-cpufreq device needs --cpu-affinity (crosvm pins to it)")
        }

        // crosvm writes --cpu-capacity into each cpu node's capacity-dmips-mhz.
        let dmips = model.dmipsPerMHz
        let capacity = vcpus.map { "\($0.index)=\(dmips[$0.index])" }.joined(separator: ",")
        notes.append(
            "--cpu-capacity is capacity-dmips-mhz: the values make the guest compute the host capacities "
                + vcpus.map { "\($0.capacity)" }.uniqued().joined(separator: ", "))

        let frequencies = vcpus.map { vcpu -> String in
            let table = model.tableMode == .maxOnly ? [vcpu.maxFrequencyKHz] : vcpu.frequenciesKHz
            return "\(vcpu.index)=" + table.map(String.init).joined(separator: ",")
        }.joined(separator: ";")
        if model.tableMode == .maxOnly {
            notes.append("table_mode = max-only: each vCPU gets a one-entry table (its maximum)")
        }
        if model.addressMap.base != DeviceAddressMap.defaultBase {
            notes.append("crosvm places the virtual-cpufreq device itself; base_address 0x\(String(model.addressMap.base, radix: 16)) has no flag")
        }

        if let scmiSocket {
            // SCMI: the levels come from the daemon, not from crosvm's tables.
            notes.removeAll { $0.hasPrefix("table_mode") || $0.hasPrefix("crosvm places") }
            notes.append("vcpufreq serve --vhost-user-scmi \(scmiSocket)=\(model.name) serves the device; crosvm's guest memory is shared with it")
            notes.append(
                "crosvm writes no SCMI node into the guest tree: add /firmware/scmi and each cpu's clocks from "
                    + "`vcpufreq topology dt --scmi` (e.g. as a device-tree overlay); not tried with a crosvm here")
            return Rendering(arguments: [
                "--cpus \(shellQuoted(cpus))",
                "--cpu-affinity \(shellQuoted(affinity))",
                "--cpu-capacity \(shellQuoted(capacity))",
                "--vhost-user \(shellQuoted("type=scmi,socket=\(keyValue(scmiSocket))"))",
            ], notes: notes)
        }
        let arguments = [
            "--cpus \(shellQuoted(cpus))",
            "--cpu-affinity \(shellQuoted(affinity))",
            "--cpu-capacity \(shellQuoted(capacity))",
            "--cpu-frequencies-khz \(shellQuoted(frequencies))",
            "--virt-cpufreq-upstream",
        ]
        return Rendering(arguments: arguments, notes: notes)
    }

    /// One flag per line, joined with ` \` continuations, ready to paste
    /// after `crosvm run`.
    public static func commandLine(_ arguments: [String]) -> String {
        arguments.enumerated().map { index, argument in
            index == arguments.count - 1 ? argument : "\(argument) \\"
        }.joined(separator: "\n")
    }

    /// A string value in crosvm's key=value options (serde_keyvalue): bare
    /// unless empty or holding `,`, `"`, `'`, `[` or `]` (a bare string
    /// ends at `,`, and the others are syntax); else double-quoted, with `\`
    /// and `"` escaped by a backslash.
    static func keyValue(_ value: String) -> String {
        let special: Set<Unicode.Scalar> = [",", "\"", "'", "[", "]"]
        guard value.isEmpty || value.unicodeScalars.contains(where: special.contains) else { return value }
        var out = "\""
        for scalar in value.unicodeScalars {
            if scalar == "\"" || scalar == "\\" { out += "\\" }
            out.unicodeScalars.append(scalar)
        }
        return out + "\""
    }

    /// `[[0,1,2,3],[4,5]]`
    static func sets(_ groups: [[Int]]) -> String {
        "[" + groups.map { "[" + $0.map(String.init).joined(separator: ",") + "]" }.joined(separator: ",") + "]"
    }

    /// Single-quotes a value unless it holds only characters no shell treats specially.
    /// A word the shell reads back as `value`. Scalar by scalar, as the shell
    /// reads bytes: a Character is a grapheme cluster, and "'" followed by a
    /// combining mark is one (not "'"), as is a prepended letter followed by
    /// ";" (a letter) — so only ASCII letters, digits and "=,:-_./+" go bare.
    static func shellQuoted(_ value: String) -> String {
        let plain = value.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "=,:-_./+".unicodeScalars.contains($0)) }
        if plain && !value.isEmpty { return value }
        return "'" + value.replacingSingleQuotes() + "'"
    }
}

extension String {
    fileprivate func replacingSingleQuotes() -> String {
        var result = ""
        for scalar in unicodeScalars {
            if scalar == "'" { result += "'\\''" } else { result.unicodeScalars.append(scalar) }
        }
        return result
    }
}

extension Array where Element: Hashable {
    fileprivate func uniqued() -> [Element] {
        var seen = Set<Element>()
        return filter { seen.insert($0).inserted }
    }
}
