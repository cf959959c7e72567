/// Semantic checks of a topology. Key paths use the topology file's names
/// (docs in README.md, "Topology file"), so an operator can find the value.
extension Topology {
    /// Every problem in the topology, errors and warnings, in file order.
    public func check() -> [Diagnostic] {
        var problems = host.check()
        problems += Self.nulProblem(host.name, path: "host.name")
        var seenNames: [String: Int] = [:]
        if vms.isEmpty { problems.append(.error("vm", "no [[vm]] profile: the daemon would have nothing to serve")) }
        for (index, vm) in vms.enumerated() {
            let path = "vm[\(index)]"
            if let first = seenNames[vm.name] {
                problems.append(.error("\(path).name", "\"\(vm.name)\" is already the name of vm[\(first)]"))
            } else {
                seenNames[vm.name] = index
            }
            problems += Self.nulProblem(vm.name, path: "\(path).name")
            problems += vm.check(against: host, path: path)
        }
        return problems
    }

    /// A name holding U+0000, which no topology file can carry: TOMLKit
    /// ends a string at its first NUL, so the file would name something
    /// else (the topology fuzz target found a host name "\u{0}" written to
    /// a file that read back as "").
    static func nulProblem(_ name: String, path: String) -> [Diagnostic] {
        guard name.unicodeScalars.contains("\u{0}") else { return [] }
        return [.error(path, "holds a NUL character (U+0000), which a topology file cannot carry")]
    }
}

extension HostTopology {
    func check() -> [Diagnostic] {
        var problems: [Diagnostic] = []
        if clusters.isEmpty { problems.append(.error("host.cluster", "the host has no [[host.cluster]]")) }
        var owner: [Int: Int] = [:]
        var names: [String: Int] = [:]
        for (index, cluster) in clusters.enumerated() {
            let path = "host.cluster[\(index)]"
            problems += Topology.nulProblem(cluster.name, path: "\(path).name")
            if cluster.name.isEmpty {
                problems.append(.error("\(path).name", "a cluster needs a name"))
            } else if let first = names[cluster.name] {
                problems.append(.error("\(path).name", "\"\(cluster.name)\" is already the name of host.cluster[\(first)]"))
            } else {
                names[cluster.name] = index
            }
            if cluster.cpus.isEmpty { problems.append(.error("\(path).cpus", "the cluster has no CPUs")) }
            for cpu in cluster.cpus.ids {
                // The file's decoder refuses such ids; a topology built in
                // code may carry any (and 0...id must stay a small range).
                guard (0...CPUList.maximumCPUID).contains(cpu) else {
                    problems.append(.error("\(path).cpus", "CPU \(cpu) is outside 0...\(CPUList.maximumCPUID)"))
                    continue
                }
                if let first = owner[cpu] {
                    problems.append(.error("\(path).cpus", "CPU \(cpu) is also in host.cluster[\(first)]"))
                } else {
                    owner[cpu] = index
                }
                if let possible = possibleCPUs, !possible.contains(cpu) {
                    problems.append(.error("\(path).cpus", "CPU \(cpu) is not in host.cpus (\(possible))"))
                }
            }
            if !(0...1024).contains(cluster.capacity) {
                problems.append(.error("\(path).capacity", "capacity \(cluster.capacity) is outside 0...1024"))
            }
            problems += Self.checkTable(cluster.frequenciesKHz, path: "\(path).frequencies_khz")
        }
        // No CPU in any cluster (all cpus keys empty or invalid): nothing is expected.
        let expected = possibleCPUs?.ids ?? owner.keys.max().map { Array(0...$0) } ?? []
        let missing = expected.filter { owner[$0] == nil }
        if !missing.isEmpty {
            let list = CPUList(missing)
            let path = possibleCPUs == nil ? "host.cluster" : "host.cpus"
            problems.append(.error(path, "CPU\(missing.count == 1 ? "" : "s") \(list) \(missing.count == 1 ? "is" : "are") in no cluster"))
        }
        let capacities = clusters.map(\.capacity).filter { (0...1024).contains($0) }
        if let highest = capacities.max(), highest != 1024 {
            problems.append(.warning("host.cluster", "no cluster has capacity 1024; the kernel normalises the fastest CPU to 1024"))
        }
        return problems
    }

    /// A frequency table must be non-empty, strictly ascending, positive,
    /// fit in 32 bits and have at most 64 entries (the upstream driver's limit).
    static func checkTable(_ table: [Int], path: String) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        if table.isEmpty { problems.append(.error(path, "the frequency table is empty")) }
        if table.count > UpstreamABI.maximumTableEntries {
            problems.append(.error(path, "\(table.count) entries; the virtual-cpufreq driver accepts at most \(UpstreamABI.maximumTableEntries)"))
        }
        for (index, value) in table.enumerated() {
            if value <= 0 || value > Int(UInt32.max) {
                problems.append(.error("\(path)[\(index)]", "\(value) kHz is outside 1...\(UInt32.max)"))
            }
            guard index > 0 else { continue }
            if value == table[index - 1] {
                problems.append(.error("\(path)[\(index)]", "\(value) kHz appears twice"))
            } else if value < table[index - 1] {
                problems.append(.error("\(path)[\(index)]", "\(value) kHz comes after \(table[index - 1]) kHz; the table must be ascending"))
            }
        }
        return problems
    }
}

extension VMProfile {
    func check(against host: HostTopology, path: String) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        if name.isEmpty { problems.append(.error("\(path).name", "a VM profile needs a name")) }
        guard (1...SharedPageABI.maximumVCPUs).contains(vcpuCount) else {
            problems.append(.error("\(path).vcpus", "\(vcpuCount) vCPUs is outside 1...\(SharedPageABI.maximumVCPUs)"))
            return problems
        }
        func countMatches(_ count: Int, _ key: String) -> Bool {
            if count == vcpuCount { return true }
            problems.append(.error("\(path).\(key)", "\(count) entries for \(vcpuCount) vCPUs"))
            return false
        }
        var modeled: [Int?] = []
        if countMatches(clusters.count, "clusters") {
            for (vcpu, name) in clusters.enumerated() {
                let index = host.clusterIndex(named: name)
                if index == nil {
                    let known = host.clusters.map(\.name).joined(separator: ", ")
                    problems.append(.error("\(path).clusters[\(vcpu)]", "no host cluster named \"\(name)\" (clusters: \(known))"))
                }
                modeled.append(index)
            }
        }
        if let pinCPUs, countMatches(pinCPUs.count, "pin_cpus") {
            for (vcpu, cpus) in pinCPUs.enumerated() {
                guard let cpus else { continue }
                if cpus.isEmpty { problems.append(.error("\(path).pin_cpus[\(vcpu)]", "an empty CPU set")) }
                let unknown = cpus.ids.filter { host.clusterIndex(ofCPU: $0) == nil }
                if !unknown.isEmpty {
                    problems.append(.error("\(path).pin_cpus[\(vcpu)]", "CPU \(CPUList(unknown)) is in no host cluster"))
                }
            }
        }
        if let domains, countMatches(domains.count, "domains"), modeled.count == vcpuCount {
            var tableOf: [Int: (vcpu: Int, cluster: Int)] = [:]
            for (vcpu, domain) in domains.enumerated() {
                if domain < 0 || domain > Int(UInt32.max) {
                    problems.append(.error("\(path).domains[\(vcpu)]", "domain \(domain) is outside 0...\(UInt32.max)"))
                    continue
                }
                guard let cluster = modeled[vcpu] else { continue }
                guard let first = tableOf[domain] else {
                    tableOf[domain] = (vcpu, cluster)
                    continue
                }
                let a = host.clusters[first.cluster], b = host.clusters[cluster]
                if a.frequenciesKHz != b.frequenciesKHz {
                    problems.append(.error(
                        "\(path).domains[\(vcpu)]",
                        "domain \(domain) spans cluster \"\(a.name)\" (vCPU \(first.vcpu)) and \"\(b.name)\" with a different frequency table"))
                } else if a.capacity != b.capacity {
                    problems.append(.warning(
                        "\(path).domains[\(vcpu)]",
                        "domain \(domain) spans clusters \"\(a.name)\" and \"\(b.name)\" of different capacity"))
                }
            }
        }
        if !(0...1024).contains(utilCap) {
            problems.append(.error("\(path).util_cap", "util_cap \(utilCap) is outside 0...1024"))
        }
        if baseAddress % 0x1000 != 0 {
            problems.append(.error("\(path).base_address", "0x\(String(baseAddress, radix: 16)) is not 4 KiB aligned"))
        } else if baseAddress > UInt64.max - DeviceAddressMap.totalSpan {
            problems.append(.error("\(path).base_address", "the device space would run past the top of the address space"))
        }
        problems += policy.check(path: "\(path).policy")
        return problems
    }
}

extension PolicySettings {
    func check(path: String) -> [Diagnostic] {
        var problems: [Diagnostic] = []
        func within(_ value: Int, _ range: ClosedRange<Int>, _ key: String, _ unit: String = "") {
            if !range.contains(value) {
                problems.append(.error("\(path).\(key)", "\(value)\(unit) is outside \(range.lowerBound)...\(range.upperBound)\(unit)"))
            }
        }
        within(hysteresis, 0...1024, "hysteresis")
        within(minimumIntervalMicroseconds, 0...1_000_000, "min_interval_us", " µs")
        within(boostHoldMilliseconds, 0...60_000, "boost_hold_ms", " ms")
        within(boostUtilization, 0...1024, "boost_util")
        within(idleDecayMilliseconds, 0...3_600_000, "idle_decay_ms", " ms")
        within(latencySliceMicroseconds, 100...100_000, "latency_slice_us", " µs")
        within(latencyNice, -20...19, "latency_nice")
        within(pollIntervalMicroseconds, 50...1_000_000, "poll_interval_us", " µs")
        return problems
    }
}
