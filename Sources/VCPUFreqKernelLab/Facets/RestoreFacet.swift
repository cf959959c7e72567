import Foundation
import VCPUFreqBPF
import VCPUFreqLinux

/// Every way a VM ends puts every attribute back as it was, read from the
/// kernel: detach; a VMM that crashes (its process killed: the daemon drops
/// its threads, journal and map entries); daemon SIGTERM; daemon SIGKILL,
/// then a new daemon on the same state directory restores before it accepts.
struct RestoreFacet: KernelFacet {
    let name = "restore"

    /// Hints on every vCPU (clamp, latency, pin); waits until the kernel shows a change on each.
    static func hintEverything(_ vm: LabVM) throws -> Bool {
        for vcpu in vm.tids.indices { try vm.request(vcpu: vcpu, utilization: 700, latencySensitive: true) }
        return eventually { zip(vm.live, vm.originals).allSatisfy { live, original in
            live.cpus != original.cpus && (live.sliceNanoseconds != original.sliceNanoseconds || live.nice != original.nice)
        } }
    }

    func run(in lab: KernelLab) throws -> FacetResult {
        var check = FacetCheck()
        lab.stopDefaultDaemon()
        let state = lab.workDirectory + "/restore-state"
        let first = try lab.startDaemon([], stateDirectory: state)
        check.note("plan \(try first.status().daemon.actuators)")

        let detached = try lab.attach(first, name: "r-detach", profile: "lab", count: 2)
        check.expect(try Self.hintEverything(detached), "detach: hints never showed: \(detached.live)")
        detached.detach()
        check.expect(detached.waitUntilRestored(), "detach: \(detached.differences())")

        try crashedVMM(lab, first, &check)

        let terminated = try lab.attach(first, name: "r-sigterm", profile: "lab", count: 2)
        check.expect(try Self.hintEverything(terminated), "SIGTERM: hints never showed: \(terminated.live)")
        let exit = first.stop(signal: SIGTERM)
        check.expect(exit == .exited(0), "SIGTERM: the daemon ended with \(exit.map { "\($0)" } ?? "no exit")")
        check.expect(terminated.differences().isEmpty, "SIGTERM: \(terminated.differences())")

        let second = try lab.startDaemon([], stateDirectory: state)
        let killed = try lab.attach(second, name: "r-sigkill", profile: "lab", count: 2)
        check.expect(try Self.hintEverything(killed), "SIGKILL: hints never showed: \(killed.live)")
        let hinted = killed.live
        second.stop(signal: SIGKILL)
        check.expect(killed.live == hinted, "SIGKILL: the threads changed with no daemon: \(killed.live)")
        let third = try lab.startDaemon([], stateDirectory: state)
        defer { third.stop() }
        // Listening means recovered: no waiting.
        check.expect(killed.differences().isEmpty, "SIGKILL + restart: \(killed.differences())")
        let recovered = try third.status().daemon.recoveredThreads
        check.expect(recovered == 2, "the restarted daemon recovered \(recovered) threads, not 2")
        check.note("detach, VMM crash, SIGTERM, SIGKILL + restart (\(recovered) threads from the journal): every attribute read back as before")
        return check.result()
    }

    /// A VMM process that attaches, gets its hints, and is SIGKILLed.
    func crashedVMM(_ lab: KernelLab, _ daemon: LabDaemon, _ check: inout FacetCheck) throws {
        let ready = lab.workDirectory + "/vmm-child.tids"
        try? FileManager.default.removeItem(atPath: ready)
        let child: ChildProcess
        do {
            child = try ChildProcess(
                [lab.labExecutable, "vmm", "--socket", daemon.socketPath, "--name", "r-crash", "--profile", "lab", "--ready", ready],
                outputPath: lab.workDirectory + "/vmm-child.log")
        } catch {
            throw LabError("cannot start the VMM child: \(error)")
        }
        guard eventually(timeoutSeconds: 30, { exists(ready) }), let text = readText(ready) else {
            _ = child.stop(grace: .seconds(1), signal: SIGKILL)
            check.fail("VMM crash: the child VMM never attached: \(readText(lab.workDirectory + "/vmm-child.log") ?? "")")
            return
        }
        let tids = text.split(whereSeparator: \.isWhitespace).compactMap { Int32($0) }
        let hints = try? PinnedUtilHints(path: lab.utilHintPinPath)
        check.expect(tids.count == 2 && tids.allSatisfy { ThreadState.of($0).cpus == [$0 == tids[0] ? 0 : 1] },
            "VMM crash: the child's threads \(tids) are not pinned: \(tids.map(ThreadState.of))")
        _ = child.stop(grace: .seconds(1), signal: SIGKILL)
        check.expect(eventually { ((try? daemon.status().vms.contains { $0.name == "r-crash" }) ?? true) == false },
            "VMM crash: the daemon still lists the crashed VMM's VM")
        if let hints {
            check.expect(eventually { tids.allSatisfy { (try? hints.hint(tid: $0)) == .some(nil) } },
                "VMM crash: the util-hint map still has the dead threads")
        }
        check.expect(daemon.problems.isEmpty, "VMM crash: the daemon logged \(daemon.problems.prefix(3))")
    }
}
