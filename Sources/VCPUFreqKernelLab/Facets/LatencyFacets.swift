/// The EEVDF slice: `se.slice` of /proc/<tid>/sched is the profile's slice
/// while the guest says latency-sensitive, the default again after detach.
/// Without custom slices (before 6.12; no se.slice before 6.6) the plan
/// falls back to nice, and the thread's nice shows it.
struct SliceFacet: KernelFacet {
    let name = "slice"

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        let daemon = try lab.defaultDaemon()
        let info = try daemon.status().daemon
        let detected = info.capabilities["eevdf_slice"] ?? "not reported"
        let available = detected.hasPrefix("available")
        check.note("detected: \(detected)")
        let vm = try lab.attach(daemon, name: "slice", profile: "lab", count: 2)
        try vm.request(vcpu: 0, utilization: 500, latencySensitive: true)
        let wanted = UInt64(LabTopology.sliceMicroseconds) * 1000
        if available {
            check.expect(info.actuators.contains("latency=slice"), "slices work but the plan is \(info.actuators)")
            check.expect(eventually { ThreadState.of(vm.tids[0]).sliceNanoseconds == wanted },
                "se.slice of the latency-sensitive vCPU is \(ThreadState.of(vm.tids[0]).sliceNanoseconds.map(String.init) ?? "missing"), not \(wanted)")
            check.expect(vm.live[1].sliceNanoseconds == vm.originals[1].sliceNanoseconds, "the other vCPU's slice changed: \(vm.live[1])")
            check.note("se.slice \(vm.originals[0].sliceNanoseconds.map(String.init) ?? "?") -> \(vm.live[0].sliceNanoseconds.map(String.init) ?? "?") ns")
        } else {
            check.expect(info.actuators.contains("latency=nice"), "no custom slices, but the plan is \(info.actuators), not the nice fallback")
            check.expect(info.actuatorNotes.contains { $0.hasPrefix("latency slice skipped") }, "no note says why slices were skipped: \(info.actuatorNotes)")
            check.expect(eventually { ThreadState.of(vm.tids[0]).nice == LabTopology.latencyNice },
                "fallback: nice of the latency-sensitive vCPU is \(ThreadState.of(vm.tids[0]).nice.map(String.init) ?? "?"), not \(LabTopology.latencyNice)")
            check.note("fallback latency=nice: nice \(vm.live[0].nice.map(String.init) ?? "?")")
        }
        vm.detach()
        check.expect(vm.waitUntilRestored(), "not restored: \(vm.differences())")
        return check.result(absent: !available)
    }
}

/// Nice as a latency hint (a profile that asks for it; the fallback where
/// slices are missing): getpriority shows the profile's nice, then the original.
struct NiceFacet: KernelFacet {
    let name = "nice"

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        let daemon = try lab.defaultDaemon()
        let info = try daemon.status().daemon
        let detected = info.capabilities["nice"] ?? "not reported"
        check.note("detected: \(detected)")
        guard detected.hasPrefix("available") else {
            check.expect(!info.actuators.contains("latency=nice"), "plan \(info.actuators) uses nice the kernel refused")
            return check.result(absent: true)
        }
        let vm = try lab.attach(daemon, name: "nice", profile: "nice", count: 2)
        try vm.request(vcpu: 1, utilization: 400, latencySensitive: true)
        check.expect(eventually { ThreadState.of(vm.tids[1]).nice == LabTopology.latencyNice },
            "getpriority of the latency-sensitive vCPU is \(ThreadState.of(vm.tids[1]).nice.map(String.init) ?? "?"), not \(LabTopology.latencyNice)")
        check.expect(vm.live[0].nice == vm.originals[0].nice, "the other vCPU's nice changed: \(vm.live[0])")
        check.note("nice \(vm.originals[1].nice.map(String.init) ?? "?") -> \(vm.live[1].nice.map(String.init) ?? "?")")
        vm.detach()
        check.expect(vm.waitUntilRestored(), "not restored: \(vm.differences())")
        return check.result()
    }
}

/// Pinning: sched_getaffinity shows each vCPU thread on its modeled cluster's CPU, then the original mask.
struct AffinityFacet: KernelFacet {
    let name = "affinity"

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        let daemon = try lab.defaultDaemon()
        let info = try daemon.status().daemon
        let detected = info.capabilities["affinity"] ?? "not reported"
        check.note("detected: \(detected)")
        guard detected.hasPrefix("available") else { return check.result(absent: true) }
        check.expect(info.actuators.contains("affinity=on"), "affinity works but the plan is \(info.actuators)")
        let vm = try lab.attach(daemon, name: "affinity", profile: "lab", count: 2)
        check.expect(eventually { vm.live.map(\.cpus) == [[0], [1]] }, "sched_getaffinity: \(vm.live.map(\.cpus)), not [[0], [1]]")
        check.note("pinned \(vm.originals.map { $0.cpus ?? [] }) -> \(vm.live.map { $0.cpus ?? [] })")
        vm.detach()
        check.expect(vm.waitUntilRestored(), "not restored: \(vm.differences())")
        return check.result()
    }
}
