import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqProtocol

@testable import VCPUFreqBPF

/// The scheduler where sched_ext is absent (this machine; Debian's 6.1 and
/// 6.12 likewise): detected from the kernel itself, refused with the reason,
/// and the daemon asked for it runs on unchanged and says why. The
/// scheduler's own behaviour is tested on Debian's 7.3 kernel by `vcpufreq
/// scheduler selftest` (scripts/test-kernels).
extension KernelTests {
    @Suite struct SchedulerHost {
        static var hasSchedExt: Bool { FileManager.default.fileExists(atPath: "/sys/kernel/sched_ext") }

        @Test("this kernel's sched_ext support, from sysfs and its BTF")
        func probe() throws {
            let support = SchedExtSupport.probe()
            if Self.hasSchedExt {
                #expect(support.hasSysfs)
                #expect(support.missingKernelTypes != nil)
            } else {
                #expect(!support.hasSysfs)
                #expect(support.problem?.hasPrefix("this kernel has no sched_ext") == true)
            }
        }

        @Test("the kfunc check reads the kernel's BTF: the sched_ext kfuncs missing here, the cpumask ones present")
        func kernelFunctions() throws {
            // A sysfs tree that says "sched_ext, disabled", with this kernel's real BTF.
            let root = NSTemporaryDirectory() + "vcpufreq-scx-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: root) }
            try FileManager.default.createDirectory(atPath: root + "/kernel/sched_ext", withIntermediateDirectories: true)
            try "disabled\n".write(toFile: root + "/kernel/sched_ext/state", atomically: true, encoding: .utf8)
            let support = SchedExtSupport.probe(sysfsRoot: root)
            #expect(support.state == "disabled")
            #expect(support.loadedScheduler == nil)
            let missing = try #require(support.missingKernelTypes, "\(support.btfProblem ?? "")")
            if !Self.hasSchedExt {
                let scx = SchedExtSupport.requiredKernelFunctions.filter { $0.contains("scx_bpf") }
                #expect(missing == scx + ["struct sched_ext_ops"])
                #expect(support.problem?.hasPrefix("this kernel's sched_ext lacks what the scheduler uses: scx_bpf_create_dsq,") == true)
            }
            // Functions this kernel has are not reported (bpf_cpumask_create exists since 6.3).
            #expect(!missing.contains("bpf_cpumask_create"))

            let unreadable = SchedExtSupport.probe(sysfsRoot: root, btfPath: root + "/no-btf")
            #expect(unreadable.missingKernelTypes == nil)
            #expect(unreadable.problem?.hasPrefix("cannot read the kernel's BTF: BPF object \(root)/no-btf") == true)
        }

        @Test("the loader refuses with the reason, and stopping it is harmless", .enabled(if: !hasSchedExt))
        func loaderRefuses() throws {
            let clusters = try SchedulerClusters(
                host: HostTopology(clusters: [HostCluster(name: "cpu", cpus: CPUList([0, 1]), capacity: 1024, frequenciesKHz: [1])]))
            let scheduler = SchedExtScheduler(configuration: .init(utilHintPinPath: "/nonexistent/util_hint", clusters: clusters))
            let status = scheduler.start()
            #expect(status.state == .notLoaded(SchedExtSupport.probe().problem ?? "?"))
            #expect(scheduler.exitDescriptor == -1)
            #expect(scheduler.snapshot() == nil)
            #expect(scheduler.checkExit().state == status.state)
            scheduler.stop()
            #expect(scheduler.status.state == status.state)
        }

        @Test("`scheduler run` exits 1 with the reason", .enabled(if: !hasSchedExt))
        func runRefuses() throws {
            let directory = NSTemporaryDirectory() + "vcpufreq-scx-run-\(getpid())"
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try DaemonProcess.topology.write(toFile: directory + "/t.toml", atomically: true, encoding: .utf8)
            let result = try DaemonProcess.runTool(["scheduler", "run", "--topology", directory + "/t.toml"])
            #expect(result.status == 1)
            #expect(result.output.contains("scheduler: not loaded: this kernel has no sched_ext"), "\(result)")
        }

        @Test("a daemon asked for the scheduler runs on, serves hints and says why it has none", .enabled(if: !hasSchedExt))
        func daemonRunsOn() throws {
            let (directory, pinPath) = Support.testPinPath("scheduler")
            defer {
                unlink(pinPath)
                rmdir(directory)
            }
            let daemon = try DaemonProcess("scheduler", arguments: ["--bpf-pin-path", pinPath, "--scheduler", "sched-ext"])
            defer { daemon.stop() }
            let client = try daemon.connect()
            let status = try Daemon.status(client) { $0.daemon.scheduler?.state != "not loaded: not started" }
            let scheduler = try #require(status.daemon.scheduler)
            #expect(
                scheduler.state
                    == "not loaded: this kernel has no sched_ext (no /sys/kernel/sched_ext: built without CONFIG_SCHED_CLASS_EXT)")
            #expect(!scheduler.loaded)
            #expect(scheduler.cpus.isEmpty)
            #expect(daemon.log.contains("sched_ext scheduler not loaded; the host keeps its own scheduler"), "\(daemon.log)")

            // It serves as before: a request reaches the pinned map.
            let stop = StopFlag()
            let threads = [try Daemon.idleThread(stop), try Daemon.idleThread(stop)]
            defer {
                stop.raise()
                for thread in threads { thread.join() }
            }
            let thread = threads[0]
            _ = try client.attach(vmName: "sched-absent", threadIDs: threads.map(\.tid))
            _ = try client.write(vcpu: 0, offset: Daemon.utilHintOffset(vcpu: 0), value: 600, sync: true)
            let applied = try Daemon.status(client) { $0.vms.first?.vcpus.first?.utilMin == 600 }
            #expect(applied.vms.first?.vcpus.first?.utilMin == 600)
            let map = try BPFMap.openPinned(path: pinPath)
            let entry = try map.lookup(key: withUnsafeBytes(of: UInt32(thread.tid)) { Array($0) })
            #expect(entry.map { UInt16($0[0]) | UInt16($0[1]) << 8 } == 600)

            let stats = try DaemonProcess.runTool(["stats", "--socket", daemon.socketPath, "--interval-ms", "100"])
            #expect(stats.status == 0)
            #expect(stats.output.contains("scheduler: not loaded: this kernel has no sched_ext"), "\(stats.output)")
        }

        @Test("`scheduler selftest` on a kernel without sched_ext: the facet is absent, the daemon said why", .enabled(if: !hasSchedExt))
        func selftestAbsent() throws {
            let report = NSTemporaryDirectory() + "vcpufreq-selftest-\(getpid()).json"
            defer { unlink(report) }
            let result = try DaemonProcess.runTool(["scheduler", "selftest", "--json", report])
            #expect(result.status == 0, "\(result)")
            #expect(result.output.contains("sched_ext: absent (this kernel has no sched_ext"), "\(result.output)")
            let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: report))) as? [String: Any]
            #expect(json?["facet"] as? String == "sched_ext")
            #expect(json?["verdict"] as? String == "absent")
            let checks = json?["checks"] as? [[String: Any]] ?? []
            #expect(checks.count == 1 && checks.first?["passed"] as? Bool == true, "\(checks)")
        }

        @Test("per-CPU runtime: a thread pinned to one CPU has all its time there, as much as in total")
        func runtimeByCPU() throws {
            let monitor = try Support.startedMonitor()
            let cpu = NativeThread.onlineCPUs > 1 ? 1 : 0
            let thread = try #require(NativeThread(cpu: cpu) { NativeThread.burnCPU(nanoseconds: 60_000_000) })
            try monitor.track(tid: thread.tid)
            thread.release()
            thread.join()
            let stats = try #require(try monitor.stats(tid: thread.tid))
            #expect(stats.runtimeByCPU.count == LibBPF.possibleCPUCount())
            #expect(stats.runtimeNanoseconds >= 60_000_000)
            #expect(stats.runtimeByCPU[cpu] == stats.runtimeByCPU.reduce(0, +))
            #expect(stats.runtimeByCPU[cpu] == stats.runtimeNanoseconds, "\(stats.runtimeByCPU) vs \(stats.runtimeNanoseconds)")
            let truth = try #require(monitor.hostTruth(tid: thread.tid))
            #expect(truth.runtimeByCPU == [.init(cpu: cpu, nanoseconds: stats.runtimeNanoseconds)])
            #expect(try monitor.untrack(tid: thread.tid))
        }
    }
}
