import Foundation
import VCPUFreqLinux

/// cgroup v2 per-domain uclamp, with two VMs in one client process (as
/// `bench daemon` has them): each domain's threads sit in a threaded group
/// whose cpu.uclamp.min/max the kernel reads back as the applied clamp in
/// percent with two decimals; a thread a vCPU creates stays in its group;
/// after detach the threads are back in the process's original cgroup and
/// every group is gone; a SIGKILLed daemon's groups are undone by the next.
struct CgroupUclampFacet: KernelFacet {
    let name = "cgroup_uclamp"

    /// The clamp in cgroups only; no BPF programs (nothing here reads them,
    /// and loading them costs each start seconds of verification under TCG).
    static let daemonArguments = ["--clamp", "cgroup,none", "--no-bpf"]

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        let info = try lab.defaultStatus()
        let detected = info.capabilities["cgroup_uclamp"] ?? "not reported"
        check.note("detected: \(detected)")
        guard detected.hasPrefix("available") else {
            check.expect(!info.actuators.contains("clamp=cgroup"), "plan \(info.actuators) uses cgroup uclamp the kernel lacks")
            return check.result(absent: true)
        }
        guard let mount = HostCapabilities.cgroup2MountPoint(mountInfo: readText("/proc/self/mountinfo") ?? "") else {
            throw LabError("no cgroup2 mount")
        }
        // One daemon of each kind at a time: they would share the BPF pin and the cgroup parent.
        lab.stopDefaultDaemon()
        let state = lab.workDirectory + "/cgroup-state"
        var daemon: LabDaemon? = try lab.startDaemon(Self.daemonArguments, stateDirectory: state)
        defer { daemon?.stop() }
        let actuators = try daemon!.status().daemon.actuators
        check.expect(actuators.contains("clamp=cgroup"), "--clamp cgroup,none gave plan \(actuators)")
        let original = ThreadState.of(ThreadScheduling.currentThreadID()).cgroup ?? "?"

        let a = try lab.attach(daemon!, name: "cg-a", profile: "lab", count: 2)
        let b = try lab.attach(daemon!, name: "cg-b", profile: "lab", count: 2)
        try a.request(vcpu: 0, utilization: 600)
        try a.request(vcpu: 1, utilization: 300)
        try b.request(vcpu: 0, utilization: 800)
        let expected: [(LabVM, Int, String)] = [(a, 0, "/cg-a/domain0"), (a, 1, "/cg-a/domain1"), (b, 0, "/cg-b/domain0")]
        for (vm, vcpu, suffix) in expected {
            let tid = vm.tids[vcpu]
            check.expect(eventually { ThreadState.of(tid).cgroup?.hasSuffix(suffix) == true },
                "thread \(tid) is in \(ThreadState.of(tid).cgroup ?? "?"), not a group ending in \(suffix)")
            guard let group = ThreadState.of(tid).cgroup, let status = try vm.status(daemon!).dropFirst(vcpu).first,
                let utilMin = status.utilMin, let utilMax = status.utilMax
            else { continue }
            let directory = mount + group
            let wantMin = CgroupUclampActuator.uclampText(utilization: utilMin, isMaximum: false)
            let wantMax = CgroupUclampActuator.uclampText(utilization: utilMax, isMaximum: true)
            func read(_ file: String) -> String { (readText(directory + "/" + file) ?? "?").trimmingCharacters(in: .whitespacesAndNewlines) }
            check.expect(read("cgroup.type") == "threaded", "\(group): cgroup.type \(read("cgroup.type"))")
            check.expect(eventually { read("cpu.uclamp.min") == wantMin && read("cpu.uclamp.max") == wantMax },
                "\(group): cpu.uclamp.min/max \(read("cpu.uclamp.min"))/\(read("cpu.uclamp.max")), applied \(wantMin)/\(wantMax)")
            check.expect(read("cpu.uclamp.min").range(of: #"^[0-9]{1,3}\.[0-9]{2}$"#, options: .regularExpression) != nil,
                "\(group): cpu.uclamp.min \(read("cpu.uclamp.min")) is not a percentage with two decimals")
            check.note("\(group): cpu.uclamp.min \(read("cpu.uclamp.min")) max \(read("cpu.uclamp.max")) (util \(utilMin)/\(utilMax))")
        }
        let child = try a.threads[0].spawnChild()
        check.expect(ThreadState.of(child.tid).cgroup == ThreadState.of(a.tids[0]).cgroup,
            "a thread created by a vCPU thread is in \(ThreadState.of(child.tid).cgroup ?? "?"), not its creator's group")
        child.stop()
        let groupA = ThreadState.of(a.tids[0]).cgroup.map { mount + (($0 as NSString).deletingLastPathComponent) }
        let processGroup = groupA.map { ($0 as NSString).deletingLastPathComponent }

        a.detach()
        check.expect(eventually { groupA.map { !exists($0) } ?? false }, "VM cg-a's groups \(groupA ?? "?") are still there after its detach")
        for tid in a.tids {
            let now = ThreadState.of(tid).cgroup ?? "?"
            check.expect(!now.contains("/cg-a/"), "thread \(tid) of the detached VM is still in \(now)")
        }
        check.expect(ThreadState.of(b.tids[0]).cgroup?.hasSuffix("/cg-b/domain0") == true, "VM cg-b lost its group when cg-a detached")
        b.detach()
        let everyone = a.tids + b.tids + [ThreadScheduling.currentThreadID()]
        check.expect(eventually { everyone.allSatisfy { ThreadState.of($0).cgroup == original } },
            "after the last detach: \(everyone.map { "\($0) in \(ThreadState.of($0).cgroup ?? "?")" }), not \(original)")
        check.expect(eventually { processGroup.map { !exists($0) } ?? false }, "the process's subtree \(processGroup ?? "?") is still there")
        check.expect(daemon!.problems.isEmpty, "the daemon logged: \(daemon!.problems.prefix(3))")
        check.note("two VMs in one process: both clamped, both restored to \(original), \(processGroup ?? "?") removed")

        // A daemon killed with a VM attached: the next one on its state directory undoes the groups.
        let c = try lab.attach(daemon!, name: "cg-c", profile: "lab", count: 2)
        try c.request(vcpu: 0, utilization: 500)
        check.expect(eventually { ThreadState.of(c.tids[0]).cgroup?.hasSuffix("/cg-c/domain0") == true }, "VM cg-c never got its group")
        daemon!.stop(signal: SIGKILL)
        daemon = nil
        check.expect(ThreadState.of(c.tids[0]).cgroup?.hasSuffix("/cg-c/domain0") == true, "the group changed with nobody to change it")
        let next = try lab.startDaemon(Self.daemonArguments, stateDirectory: state)
        defer { next.stop() }
        check.expect((c.tids + [ThreadScheduling.currentThreadID()]).allSatisfy { ThreadState.of($0).cgroup == original },
            "after journal recovery: \(c.tids.map { ThreadState.of($0).cgroup ?? "?" }), not \(original)")
        check.expect(processGroup.map { !exists($0) } ?? false,
            "journal recovery left \(processGroup ?? "?"): \(processGroup.map(Self.describeTree) ?? "") (daemon: \(next.logTail(lines: 12)))")
        check.expect((try? next.status().daemon.recoveredThreads) == 2, "the next daemon recovered \(String(describing: try? next.status().daemon.recoveredThreads)) threads, not 2")
        return check.result()
    }

    /// Every group below `directory` with its type and threads (for a failure message).
    static func describeTree(_ directory: String) -> String {
        let names = (FileManager.default.subpaths(atPath: directory) ?? []).filter { !$0.contains(".") || $0.hasSuffix("/") }
        return ([""] + names).compactMap { name -> String? in
            let path = name.isEmpty ? directory : directory + "/" + name
            guard let type = readText(path + "/cgroup.type") else { return nil }
            let threads = (readText(path + "/cgroup.threads") ?? "?").split(whereSeparator: \.isNewline).joined(separator: ",")
            return "\(name.isEmpty ? "." : name) [\(type.trimmingCharacters(in: .whitespacesAndNewlines)); threads \(threads)]"
        }.joined(separator: " ")
    }
}
