/// Renders the guest device-tree source (`/dts-v1/`) a VMM needs for one VM:
/// a `cpus` node with one `cpu@N` per vCPU (capacity-dmips-mhz chosen so the
/// guest computes the host capacities), a `cpu-map` with one cluster per
/// modeled host cluster, and the `qemu,virtual-cpufreq` node. Pure text.
public enum DeviceTree {
    /// `compatible` of the vCPU nodes; any armv8 string works for a KVM guest.
    public static let cpuCompatible = "arm,armv8"

    /// The root node's `compatible`: the generic virtual machine compatible of
    /// QEMU's arm64 `virt` board. dtschema's root-node.yaml requires
    /// `compatible` and `model` on the root.
    public static let rootCompatible = "linux,dummy-virt"
    public static let rootModel = "vcpufreq virtual machine"

    /// Renders the VM `vm` (the first profile when nil) of a checked topology.
    ///
    /// - Parameter baseAddress: overrides the profile's `base_address`
    ///   (callers validate it: 4 KiB aligned, device fits below 2^64).
    /// - Throws: every error `Topology.check()` finds, or an unknown VM name.
    public static func render(_ topology: Topology, vm: String? = nil, baseAddress: UInt64? = nil) throws(TopologyError) -> String {
        var model = try topology.model(forVM: vm)
        if let baseAddress { model.addressMap.base = baseAddress }
        return render(model, host: topology.host)
    }

    /// Renders a resolved VM model; `host` supplies cluster names for comments.
    public static func render(_ model: VMModel, host: HostTopology) -> String {
        let dmips = model.dmipsPerMHz
        var out = "/dts-v1/;\n\n"
        out += "// Guest device tree for VM \"\(comment(model.name))\" on host \"\(comment(host.name))\", "
        out += "written by `vcpufreq topology dt`.\n"
        out += "// capacity-dmips-mhz is chosen so that the guest kernel's normalised capacity\n"
        out += "// (dmips x cpuinfo.max_freq in kHz, largest = 1024) equals the host capacity\n"
        out += "// of the cluster each vCPU models.\n\n"
        out += "/ {\n"
        out += "\tcompatible = \"\(rootCompatible)\";\n"
        out += "\tmodel = \"\(rootModel)\";\n"
        out += "\t#address-cells = <2>;\n"
        out += "\t#size-cells = <2>;\n\n"
        out += "\tcpus {\n"
        out += "\t\t#address-cells = <1>;\n"
        out += "\t\t#size-cells = <0>;\n\n"
        out += "\t\tcpu-map {\n"
        for (index, members) in clusterGroups(model).enumerated() {
            let name = host.clusters.indices.contains(members.cluster) ? host.clusters[members.cluster].name : "?"
            out += "\t\t\t// host cluster \"\(comment(name))\"\n"
            out += "\t\t\tcluster\(index) {\n"
            for (core, vcpu) in members.vcpus.enumerated() {
                out += "\t\t\t\tcore\(core) {\n"
                out += "\t\t\t\t\tcpu = <&cpu\(vcpu)>;\n"
                out += "\t\t\t\t};\n"
            }
            out += "\t\t\t};\n"
        }
        out += "\t\t};\n"
        for vcpu in model.vcpus {
            let name = host.clusters.indices.contains(vcpu.cluster) ? host.clusters[vcpu.cluster].name : "?"
            out += "\n"
            out += "\t\t// models \"\(comment(name))\": capacity \(vcpu.capacity), max \(vcpu.maxFrequencyKHz) kHz\n"
            out += "\t\tcpu\(vcpu.index): cpu@\(hex(UInt64(vcpu.index))) {\n"
            out += "\t\t\tdevice_type = \"cpu\";\n"
            out += "\t\t\tcompatible = \"\(cpuCompatible)\";\n"
            out += "\t\t\treg = <0x\(hex(UInt64(vcpu.index)))>;\n"
            out += "\t\t\tenable-method = \"psci\";\n"
            out += "\t\t\tcapacity-dmips-mhz = <\(dmips[vcpu.index])>;\n"
            out += "\t\t};\n"
        }
        out += "\t};\n\n"
        out += "\tpsci {\n"
        out += "\t\tcompatible = \"arm,psci-1.0\", \"arm,psci-0.2\";\n"
        out += "\t\tmethod = \"hvc\";\n"
        out += "\t};\n\n"
        let base = model.addressMap.base, size = model.addressMap.upstreamSize
        out += "\t// One 0x\(hex(UpstreamABI.windowSize))-byte register window per vCPU.\n"
        out += "\tcpufreq@\(hex(base)) {\n"
        out += "\t\tcompatible = \"\(UpstreamABI.compatible)\";\n"
        out += "\t\treg = <\(cells(base)) \(cells(size))>;\n"
        out += "\t};\n"
        out += "};\n"
        return out
    }

    /// vCPUs grouped by modeled host cluster, clusters in order of first appearance.
    public static func clusterGroups(_ model: VMModel) -> [(cluster: Int, vcpus: [Int])] {
        var groups: [(cluster: Int, vcpus: [Int])] = []
        for vcpu in model.vcpus {
            if let index = groups.firstIndex(where: { $0.cluster == vcpu.cluster }) {
                groups[index].vcpus.append(vcpu.index)
            } else {
                groups.append((vcpu.cluster, [vcpu.index]))
            }
        }
        return groups
    }

    static func hex(_ value: UInt64) -> String { String(value, radix: 16) }

    /// A 64-bit value as two 32-bit cells: `0xhi 0xlo`.
    static func cells(_ value: UInt64) -> String {
        "0x\(hex(value >> 32)) 0x\(hex(value & 0xffff_ffff))"
    }

    /// Names go into `//` comments only; a newline would end the comment.
    static func comment(_ text: String) -> String {
        String(text.map { $0.isNewline ? " " : $0 })
    }
}
// MARK: capacity-dmips-mhz

/// `capacity-dmips-mhz` values that make a guest kernel compute exactly the
/// host capacities the vCPUs model.
///
/// The guest (drivers/base/arch_topology.c, Linux 6.8+, so every kernel with
/// the virtual-cpufreq driver) computes for each CPU
/// `raw = capacity-dmips-mhz × cpuinfo.max_freq (kHz)` and then
/// `capacity = (raw << 10) / max(raw over all CPUs)` in 64-bit integers.
/// Writing the host capacity itself into capacity-dmips-mhz (what crosvm's
/// `--host-cpu-topology` does) is therefore wrong whenever clusters have
/// different maximum frequencies: a 160-capacity little core at 1.8 GHz
/// next to a 1024 big core at 2.8 GHz would come out at 102.
extension DeviceTree {
    /// One modeled CPU kind: its target capacity (0...1024) and the maximum
    /// frequency the guest will see for it.
    public struct CapacityTarget: Hashable, Sendable {
        public var capacity: Int
        public var maxFrequencyKHz: UInt32
        public init(capacity: Int, maxFrequencyKHz: UInt32) {
            self.capacity = capacity
            self.maxFrequencyKHz = maxFrequencyKHz
        }
    }

    /// The guest kernel's normalisation (`topology_normalize_cpu_scale`):
    /// capacities from capacity-dmips-mhz and max frequencies.
    public static func guestCapacities(dmips: [UInt32], maxFrequenciesKHz: [UInt32]) -> [Int] {
        let raw = zip(dmips, maxFrequenciesKHz).map { UInt64($0) * UInt64(max($1, 1)) }
        let scale = max(raw.max() ?? 1, 1)
        return raw.map { Int(($0 << 10) / scale) }
    }

    /// capacity-dmips-mhz for each target.
    ///
    /// Targets above the largest capacity are impossible (the guest always
    /// normalises its fastest CPU to 1024); when the largest target is below
    /// 1024 the guest sees every capacity scaled by 1024 / largest.
    ///
    /// Method: every CPU at the top capacity must reach the same raw value R
    /// exactly, so R is a multiple of the least common multiple L of their
    /// maximum frequencies; any other CPU i needs an integer dmips in
    /// [c_i·R / (1024·f_i), (c_i+1)·R / (1024·f_i)), an interval at least 1
    /// long once R ≥ 1024·f_i. The smallest such R gives the smallest,
    /// most readable values (the top cluster gets 1024 when it is alone).
    /// If L would push a value past 32 bits (several top clusters with
    /// unrelated kHz maxima), R falls back to a multiple of the fastest
    /// frequency and a top cluster may come out at 1023.
    public static func dmipsPerMHz(for targets: [CapacityTarget]) -> [UInt32] {
        guard let top = targets.map(\.capacity).max(), top > 0 else { return targets.map { _ in 1 } }
        let frequencies = targets.map { UInt64(max($0.maxFrequencyKHz, 1)) }
        let fastest = frequencies.max() ?? 1, slowest = frequencies.min() ?? 1
        // R must keep every dmips within 32 bits (dmips ≤ R / f + 1) and
        // 1024·R within 64 bits.
        let largestReference = min(UInt64(UInt32.max - 1) * slowest, 1 << 53)
        var common: UInt64 = 1
        for (target, frequency) in zip(targets, frequencies) where target.capacity == top {
            guard let next = leastCommonMultiple(common, frequency), next <= largestReference else {
                common = fastest
                break
            }
            common = next
        }
        // R = k·L ≥ 1024·fastest (k = 1 once L alone is that large).
        let multiple = max((1024 * fastest + common - 1) / common, 1)
        let reference = multiple <= largestReference / common ? multiple * common : common
        return zip(targets, frequencies).map { target, frequency in
            let capacity = UInt64(min(max(target.capacity, 0), top)) * 1024 / UInt64(top)
            // ceil(c·R / (1024·f)), at least 1: a 0 would make the kernel treat the CPU as having no capacity.
            let numerator = capacity * reference
            let denominator = 1024 * frequency
            let value = (numerator + denominator - 1) / denominator
            return UInt32(clamping: max(value, 1))
        }
    }

    static func leastCommonMultiple(_ a: UInt64, _ b: UInt64) -> UInt64? {
        var x = a, y = b
        while y != 0 { (x, y) = (y, x % y) }
        let (product, overflow) = (a / x).multipliedReportingOverflow(by: b)
        return overflow ? nil : product
    }
}

extension VMModel {
    /// capacity-dmips-mhz of each vCPU (see `DeviceTree.dmipsPerMHz(for:)`).
    public var dmipsPerMHz: [UInt32] {
        DeviceTree.dmipsPerMHz(for: vcpus.map { DeviceTree.CapacityTarget(capacity: $0.capacity, maxFrequencyKHz: $0.maxFrequencyKHz) })
    }
}
