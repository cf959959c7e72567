import VCPUFreqBPF
import VCPUFreqProtocol

/// The BPF programs load and attach; host truth counts a thread that works
/// and sleeps a known pattern as the kernel's own accounting does
/// (schedstat runtime, voluntary switches); the pinned util-hint map holds
/// the hint the daemon applied and loses it at detach; a VM whose shared
/// page is a BPF map gets `sched_seen` / `sched_placement` written by the
/// programs themselves at its vCPU threads' scheduling events: what the guest
/// published, and the CPU the kernel ran the thread on.
struct BPFFacet: KernelFacet {
    let name = "bpf"

    /// The work/sleep pattern of the measured thread: ~0.3 s in all.
    static let busy = Duration.milliseconds(10)
    static let sleep = Duration.milliseconds(20)
    static let rounds = 10

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        let info = try lab.defaultStatus()
        check.note("daemon: \(info.bpf.prefix { $0 != ";" })")
        guard info.bpf.hasPrefix("loaded") else {
            check.fail("the BPF programs did not load: \(info.bpf)")
            return check.result()
        }
        // The daemon writes the util-hint map while the map is its clamp (docs/bpf.md): ask for it.
        lab.stopDefaultDaemon()
        let daemon = try lab.startDaemon(["--clamp", "bpf-map,none"])
        defer { daemon.stop() }
        let plan = try daemon.status().daemon.actuators
        check.expect(plan.contains("clamp=bpf-map"), "--clamp bpf-map,none gave plan \(plan)")
        let vm = try lab.attach(daemon, name: "bpf", profile: "lab", count: 2)
        try vm.request(vcpu: 0, utilization: 700, latencySensitive: true)
        let hints = try PinnedUtilHints(path: lab.utilHintPinPath)
        func mapMatches() -> (Bool, String) {
            guard let status = try? vm.status(daemon).first, let hint = try? hints.hint(tid: vm.tids[0]) else {
                return (false, "no hint in \(lab.utilHintPinPath) for thread \(vm.tids[0])")
            }
            let ok = hint.utilMin == status.utilMin && hint.utilMax == status.utilMax && hint.utilMin > 0
                && hint.flags.contains(.latencySensitive)
            return (ok, "map util \(hint.utilMin)/\(hint.utilMax) flags \(hint.flags.rawValue) slice \(hint.sliceMicroseconds) us, "
                + "applied \(status.utilMin ?? 0)/\(status.utilMax ?? 0)")
        }
        check.expect(eventually { mapMatches().0 }, "util-hint map: \(mapMatches().1)")
        check.note("util-hint map: \(mapMatches().1)")

        // Host truth of vCPU 1 against the kernel's accounting over the same interval.
        let worker = vm.threads[1]
        func truth() throws -> StatusDocument.HostTruth {
            guard let truth = try vm.status(daemon)[1].hostTruth else { throw LabError("STATUS has no host truth for vCPU 1") }
            return truth
        }
        guard eventually({ (try? truth()) != nil }) else {
            check.fail("STATUS never showed host truth for vCPU 1")
            return check.result()
        }
        let truthBefore = try truth()
        guard let kernelBefore = ThreadAccounting.of(worker.tid) else { throw LabError("no schedstat for thread \(worker.tid)") }
        worker.workAndSleep(busy: Self.busy, sleep: Self.sleep, rounds: Self.rounds)
        let truthAfter = try truth()
        guard let kernelAfter = ThreadAccounting.of(worker.tid) else { throw LabError("no schedstat for thread \(worker.tid)") }
        let bpfRuntime = Int64(truthAfter.runtimeNanoseconds) - Int64(truthBefore.runtimeNanoseconds)
        let kernelRuntime = Int64(kernelAfter.runtimeNanoseconds) - Int64(kernelBefore.runtimeNanoseconds)
        let bpfBlocked = Int64(truthAfter.voluntarySwitches) - Int64(truthBefore.voluntarySwitches)
        let kernelBlocked = Int64(kernelAfter.voluntarySwitches) - Int64(kernelBefore.voluntarySwitches)
        let bpfWakeups = Int64(truthAfter.wakeups) - Int64(truthBefore.wakeups)
        let busyTotal = Int64(Self.rounds) * Int64(Self.busy.components.attoseconds / 1_000_000_000 + Self.busy.components.seconds * 1_000_000_000)
        check.note("runtime BPF \(bpfRuntime / 1000) µs, schedstat \(kernelRuntime / 1000) µs (spun \(busyTotal / 1000) µs of CPU time); "
            + "blocked BPF \(bpfBlocked), kernel \(kernelBlocked); wake-ups \(bpfWakeups)")
        check.expect(kernelRuntime >= busyTotal, "the worker ran \(kernelRuntime) ns by schedstat, less than the \(busyTotal) ns of CPU time it spun")
        check.expect(abs(bpfRuntime - kernelRuntime) <= max(kernelRuntime / 10, 5_000_000),
            "BPF runtime \(bpfRuntime) ns vs schedstat \(kernelRuntime) ns: more than 10 % apart")
        check.expect(abs(bpfBlocked - kernelBlocked) <= 2, "BPF counted \(bpfBlocked) voluntary switches, the kernel \(kernelBlocked)")
        check.expect(bpfWakeups >= Int64(Self.rounds) - 2 && bpfWakeups <= kernelBlocked + 2,
            "BPF counted \(bpfWakeups) wake-ups for \(Self.rounds) sleeps (\(kernelBlocked) voluntary switches)")

        vm.detach()
        check.expect(eventually { (try? hints.hint(tid: vm.tids[0])) == .some(nil) }, "the hint of thread \(vm.tids[0]) is still in the map after detach")
        check.expect(vm.waitUntilRestored(), "not restored: \(vm.differences())")
        try checkBPFMapPage(lab, daemon, &check)
        return check.result()
    }

    /// The utilization vCPU 1 publishes on its BPF-map page (no daemon reads it for this check).
    static let pageUtilization: UInt16 = 450

    /// A VM asks for its page as a BPF map (HELLO feature bpfMapPage), vCPU 1
    /// publishes a utilization, its thread wakes and sleeps: the programs'
    /// words in the slot show that publication (its sequence) and the CPU
    /// the kernel reports for the thread (/proc/TID/stat `processor`).
    private func checkBPFMapPage(_ lab: KernelLab, _ daemon: LabDaemon, _ check: inout FacetCheck) throws {
        let capability = try daemon.status().daemon.capabilities["bpf_map_page"] ?? "not in STATUS"
        guard capability.hasPrefix("available") else {
            check.fail("the daemon offers no BPF-map pages with the programs loaded: \(capability)")
            return
        }
        let vm = try lab.attach(daemon, name: "bpfpage", profile: "lab", count: 2, bpfMapPage: true)
        defer { vm.detach() }
        guard vm.vm.pageKind == .bpfMap else {
            check.fail("asked for a BPF-map page, got a \(vm.vm.pageKind) page")
            return
        }
        try vm.request(vcpu: 1, utilization: UInt32(Self.pageUtilization))
        let sequence = UInt16(truncatingIfNeeded: vm.vm.guestSequence(vcpu: 1))
        let worker = vm.threads[1]
        func words() -> String {
            let (seen, placement) = vm.vm.scheduler(vcpu: 1)
            return "sched_seen \(seen.map { "util \($0.utilization.map(String.init) ?? "none") seq \($0.sequence)" } ?? "unwritten"), "
                + "sched_placement \(placement.map { "CPU \($0.cpu) capacity \($0.capacity)" } ?? "unwritten"), "
                + "kernel: CPU \(KernelCPU.of(worker.tid).map(String.init) ?? "?"), guest seq \(sequence)"
        }
        let shown = eventually {
            worker.workAndSleep(busy: .milliseconds(1), sleep: .milliseconds(1), rounds: 1)
            let (seen, placement) = vm.vm.scheduler(vcpu: 1)
            return seen?.utilization == Self.pageUtilization && seen?.sequence == sequence
                && placement != nil && placement?.cpu == KernelCPU.of(worker.tid)
        }
        check.expect(shown, "BPF-map page of vCPU 1 (published util \(Self.pageUtilization)): \(words())")
        check.expect(KernelCPU.of(worker.tid) == 1, "vCPU 1 is pinned to CPU 1, the kernel reports CPU \(KernelCPU.of(worker.tid).map(String.init) ?? "?")")
        check.note("BPF-map page: \(words())")
    }
}

/// The CPU the kernel last ran a thread on: field 39 (`processor`) of
/// /proc/self/task/TID/stat.
enum KernelCPU {
    static func of(_ tid: Int32) -> Int? {
        guard let stat = readText("/proc/self/task/\(tid)/stat"), let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after the command: state is field 3, processor field 39.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 36 ? Int(fields[36]) : nil
    }
}
