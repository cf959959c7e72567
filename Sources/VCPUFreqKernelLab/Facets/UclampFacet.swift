import VCPUFreqBPF

/// Per-thread uclamp: sched_getattr's util_min/util_max equal the hint the
/// daemon applied, a thread the vCPU thread creates does not inherit it
/// (RESET_ON_FORK), and util_max holds a vCPU down that is pinned onto a
/// faster CPU than it models. Without CONFIG_UCLAMP_TASK: the plan skips
/// uclamp, the clamp is recorded (and in the BPF map), the thread is untouched.
struct UclampFacet: KernelFacet {
    let name = "uclamp"

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        let daemon = try lab.defaultDaemon()
        let info = try daemon.status().daemon
        let detected = info.capabilities["uclamp"] ?? "not reported"
        let available = detected.hasPrefix("available")
        check.note("detected: \(detected); plan \(info.actuators)")
        let vm = try lab.attach(daemon, name: "uclamp", profile: "lab", count: 2)
        let tid = vm.tids[0]
        try vm.request(vcpu: 0, utilization: 600)
        let applied = eventually { ((try? vm.status(daemon))?.first?.utilMin ?? 0) > 0 }
        check.expect(applied, "the daemon never applied the request (STATUS \(String(describing: try? vm.status(daemon).first)))")
        guard available else {
            check.expect(!info.actuators.contains("clamp=uclamp"), "plan \(info.actuators) uses uclamp the kernel refused")
            check.expect(
                info.actuatorNotes.contains { $0.hasPrefix("clamp uclamp skipped") },
                "no note says why uclamp was skipped: \(info.actuatorNotes)")
            let status = try vm.status(daemon)[0]
            check.expect(vm.live[0].utilMin == vm.originals[0].utilMin && vm.live[0].utilMax == vm.originals[0].utilMax,
                "the kernel's clamps changed without uclamp: \(vm.live[0]) vs \(vm.originals[0])")
            check.note("hint util_min \(status.utilMin.map(String.init) ?? "?") recorded by the daemon, not applied by the kernel")
            if info.actuators.contains("clamp=bpf-map") {
                let hint = try PinnedUtilHints(path: lab.utilHintPinPath).hint(tid: tid)
                check.expect(hint?.utilMin == status.utilMin, "util-hint map has \(String(describing: hint)), STATUS \(String(describing: status.utilMin))")
                check.note("fallback clamp=bpf-map: the pinned map holds util_min \(hint.map { String($0.utilMin) } ?? "nothing")")
            }
            vm.detach()
            check.expect(vm.waitUntilRestored(), "not restored: \(vm.differences())")
            return check.result(absent: true)
        }
        check.expect(info.actuators.contains("clamp=uclamp"), "uclamp works but the plan is \(info.actuators)")
        let status = try vm.status(daemon)[0]
        let matches = eventually {
            let live = ThreadState.of(tid)
            return live.utilMin == status.utilMin.map(UInt32.init) && live.utilMax == status.utilMax.map(UInt32.init)
        }
        let live = ThreadState.of(tid)
        check.expect(matches, "sched_getattr \(live.utilMin.map(String.init) ?? "?")/\(live.utilMax.map(String.init) ?? "?"), the daemon applied \(status.utilMin.map(String.init) ?? "?")/\(status.utilMax.map(String.init) ?? "?")")
        check.expect(live.resetOnFork == true, "SCHED_FLAG_RESET_ON_FORK is not set on the vCPU thread")
        check.note("vCPU 0: request util 600 -> sched_getattr util_min \(live.utilMin ?? 0) util_max \(live.utilMax ?? 0)")

        let child = try vm.threads[0].spawnChild()
        let inherited = ThreadState.of(child.tid)
        check.expect(inherited.utilMin == 0 && inherited.utilMax == 1024,
            "a thread created by the vCPU thread has uclamp \(inherited.utilMin ?? 0)/\(inherited.utilMax ?? 0), not 0/1024")
        child.stop()

        // Models a little CPU, pinned onto the big one: held down before and after its first request.
        let held = try lab.attach(daemon, name: "uclamp-held", profile: "held", count: 1)
        func heldMatches() -> (Bool, String) {
            guard let status = try? held.status(daemon).first, let max = status.utilMax else { return (false, "no STATUS") }
            let live = ThreadState.of(held.tids[0])
            return (live.utilMax == UInt32(max) && live.utilMin == status.utilMin.map(UInt32.init) && max < 1024,
                    "sched_getattr \(live.utilMin ?? 0)/\(live.utilMax ?? 0), applied \(status.utilMin ?? 0)/\(max)")
        }
        check.expect(eventually { heldMatches().0 }, "held vCPU at attach: \(heldMatches().1)")
        check.note("held vCPU at attach: \(heldMatches().1)")
        try held.request(vcpu: 0, utilization: 300)
        check.expect(eventually { heldMatches().0 && (try? held.status(daemon).first?.utilMin ?? 0) ?? 0 > 0 },
            "held vCPU after a request: \(heldMatches().1)")
        let after = (try? held.status(daemon).first).flatMap { $0 }
        check.expect(after?.utilMax == after?.utilMin, "held vCPU: util_max \(after?.utilMax ?? 0) is not its util_min \(after?.utilMin ?? 0)")
        check.note("held vCPU after request util 300: \(heldMatches().1)")

        vm.detach()
        held.detach()
        check.expect(vm.waitUntilRestored(), "not restored: \(vm.differences())")
        check.expect(held.waitUntilRestored(), "not restored: \(held.differences())")
        return check.result()
    }
}
