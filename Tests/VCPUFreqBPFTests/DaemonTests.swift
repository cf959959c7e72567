import Foundation
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqProtocol

@testable import VCPUFreqBPF

extension KernelTests {
    /// A real daemon process with the BPF programs: the util-hint map as its
    /// clamp actuator, host truth in STATUS, `vcpufreq stats`, and the
    /// daemon without privileges. The "vCPU threads" are threads of the test
    /// process (the daemon accepts threads of its peer).
    @Suite struct Daemon {
        /// util_hint of vCPU `vcpu`'s util-hint window (device-space offset).
        static func utilHintOffset(vcpu: Int) -> UInt64 {
            DeviceAddressMap.utilHintOffset + UInt64(vcpu) * UtilHintABI.windowSize + UtilHintABI.Register.utilHint.rawValue
        }

        /// set_perf of vCPU `vcpu`'s upstream window.
        static func setPerfOffset(vcpu: Int) -> UInt64 {
            DeviceAddressMap.upstreamOffset + UInt64(vcpu) * UpstreamABI.windowSize + UpstreamABI.Register.setPerf.rawValue
        }

        /// A thread that sleeps until `stop` is raised (a vCPU thread between runs).
        static func idleThread(_ stop: StopFlag, _ body: @escaping () -> Void = {}) throws -> NativeThread {
            let thread = try #require(
                NativeThread {
                    body()
                    while !stop.isRaised { NativeThread.sleep(nanoseconds: 2_000_000) }
                })
            thread.release()
            return thread
        }

        /// se.sum_exec_runtime of a thread of this process (schedstat field 1), ns.
        static func kernelRuntime(_ tid: Int32) -> UInt64 {
            let text = FileSystems.readSmallFile("/proc/self/task/\(tid)/schedstat") ?? ""
            return text.split(separator: " ").first.flatMap { UInt64($0) } ?? 0
        }

        /// Polls STATUS until `done` holds for it (or 5 s pass); returns the last one.
        static func status(
            _ client: VCPUFreqClient, until done: (StatusDocument) -> Bool
        ) throws -> StatusDocument {
            let deadline = Date().addingTimeInterval(5)
            while true {
                let status = try client.status()
                if done(status) || Date() > deadline { return status }
                usleep(10_000)
            }
        }

        @Test("the util-hint map reflects what the daemon applied, and detach removes the entries")
        func mapReflectsApplied() throws {
            let (directory, pinPath) = Support.testPinPath("daemon")
            defer {
                unlink(pinPath)
                rmdir(directory)
            }
            let daemon = try DaemonProcess("map", arguments: ["--bpf-pin-path", pinPath, "--clamp", "bpf-map,none"])
            defer { daemon.stop() }
            let client = try daemon.connect()
            let start = try client.status()
            #expect(start.daemon.bpf.hasPrefix("loaded: "), "\(start.daemon.bpf)")
            #expect(start.daemon.bpf.contains("util-hint map pinned at \(pinPath)"))
            #expect(start.daemon.actuators.contains("clamp=bpf-map"), "\(start.daemon.actuators)")
            #expect(start.daemon.capabilities["bpf_map"]?.hasPrefix("available") == true)

            let stop = StopFlag()
            let threads = [try Self.idleThread(stop), try Self.idleThread(stop)]
            defer {
                stop.raise()
                for thread in threads { thread.join() }
            }
            let tids = threads.map(\.tid)
            _ = try client.attach(vmName: "bpf-map-test", threadIDs: tids)
            let map = try BPFMap.openPinned(path: pinPath)
            func entry(_ tid: Int32) throws -> (min: UInt16, max: UInt16, flags: UInt32, slice: UInt32, seq: UInt32)? {
                try map.lookup(key: KernelTests.UtilHintMap.key(tid)).map(KernelTests.UtilHintMap.decode)
            }

            // vCPU 0 asks for utilization 600 directly; vCPU 1 for 1.5 GHz (a
            // table entry) of a 2 GHz vCPU of capacity 1024: 1024 × 1500000 /
            // 2000000 = 768 (governor none: no headroom compensation). Each is
            // its own domain, and neither is slower than the host CPU, so
            // util_max stays 1024 (docs/design.md).
            try client.write(vcpu: 0, offset: Self.utilHintOffset(vcpu: 0), value: 600, sync: true)
            try client.write(vcpu: 1, offset: Self.setPerfOffset(vcpu: 1), value: 1_500_000, sync: true)
            let expected: [(UInt16, UInt16)] = [(600, 1024), (768, 1024)]
            var status = try Self.status(client) { status in
                status.vms.first?.vcpus.map { ($0.utilMin ?? 0, $0.utilMax ?? 0) }.elementsEqual(expected, by: ==) == true
            }
            var vcpus = try #require(status.vms.first?.vcpus)
            var sequences: [UInt32] = []
            for (index, vcpu) in vcpus.enumerated() {
                #expect(vcpu.utilMin == expected[index].0 && vcpu.utilMax == expected[index].1, "\(vcpu)")
                let value = try #require(try entry(tids[index]), "no map entry for TID \(tids[index])")
                // What the daemon reports as applied is what the map holds.
                #expect(value.min == vcpu.utilMin && value.max == vcpu.utilMax)
                #expect(vcpu.latency == "none" && value.flags == 0 && value.slice == 0)
                #expect(value.seq >= 1)
                sequences.append(value.seq)
                // Tracked: its host truth is in STATUS.
                #expect(vcpu.hostTruth != nil)
                #expect(vcpu.actuationErrors == 0)
            }

            // A new request: the entry follows, numbered one further.
            try client.write(vcpu: 0, offset: Self.utilHintOffset(vcpu: 0), value: 300, sync: true)
            status = try Self.status(client) { $0.vms.first?.vcpus.first?.utilMin == 300 }
            vcpus = try #require(status.vms.first?.vcpus)
            let updated = try #require(try entry(tids[0]))
            #expect(vcpus[0].utilMin == 300 && updated.min == 300 && updated.max == 1024)
            #expect(updated.seq == sequences[0] &+ 1)
            #expect(try entry(tids[1])?.seq == sequences[1])  // vCPU 1 untouched

            #expect(try client.detach() == 2)
            for tid in tids { #expect(try entry(tid) == nil, "entry of TID \(tid) left after detach") }
            let log = daemon.stop()
            #expect(log.contains("BPF programs loaded"), "\(log)")
        }

        @Test("a killed daemon's hints are removed from the map by the next one (restore journal)")
        func journalRecovery() throws {
            let (directory, pinPath) = Support.testPinPath("journal")
            defer {
                unlink(pinPath)
                rmdir(directory)
            }
            let stop = StopFlag()
            let threads = [try Self.idleThread(stop), try Self.idleThread(stop)]
            defer {
                stop.raise()
                for thread in threads { thread.join() }
            }
            let tids = threads.map(\.tid)
            let killed = try DaemonProcess("killed", arguments: ["--bpf-pin-path", pinPath, "--clamp", "bpf-map,none"])
            defer { killed.stop() }
            do {
                let client = try killed.connect()
                _ = try client.attach(vmName: "journal-test", threadIDs: tids)
                try client.write(vcpu: 0, offset: Self.utilHintOffset(vcpu: 0), value: 500, sync: true)
                try client.write(vcpu: 1, offset: Self.utilHintOffset(vcpu: 1), value: 700, sync: true)
                _ = try Self.status(client) { $0.vms.first?.vcpus.map(\.utilMin) == [500, 700] }
                killed.kill()
            }
            let map = try BPFMap.openPinned(path: pinPath)
            let left = try tids.map { try map.lookup(key: KernelTests.UtilHintMap.key($0)).map(KernelTests.UtilHintMap.decode)?.min }
            #expect(left == [500, 700])  // the pin outlives the daemon, and so do its hints

            let next = try DaemonProcess(
                "next", arguments: ["--bpf-pin-path", pinPath, "--clamp", "bpf-map,none", "--state-dir", killed.stateDirectory])
            defer { next.stop() }
            #expect(try next.connect().status().daemon.recoveredThreads == 2)
            for tid in tids { #expect(try map.lookup(key: KernelTests.UtilHintMap.key(tid)) == nil, "TID \(tid)") }
            // The killed daemon recorded the map as its instance's (state
            // directory): the next one took it over and unpins it when it stops.
            let log = next.stop()
            #expect(PinnedMaps.id(at: pinPath) == nil, "\(log)")
        }

        @Test("host truth in STATUS matches the kernel's accounting, and vcpufreq stats reports it")
        func hostTruthAndStats() throws {
            // No pin: this test must not touch the system's util-hint map; clamps are then off.
            let metricsPath = NSTemporaryDirectory() + "vcpufreq-stats-metrics-\(getpid()).prom"
            defer { unlink(metricsPath) }
            let daemon = try DaemonProcess(
                "stats", arguments: ["--bpf-pin-path", "none", "--metrics-file", metricsPath, "--metrics-interval-ms", "100"])
            defer { daemon.stop() }
            let client = try daemon.connect()
            #expect(try client.status().daemon.capabilities["bpf_map"]?.hasPrefix("unavailable: the util-hint map is not pinned") == true)

            let stop = StopFlag()
            let go = StopFlag()
            let burned = StopFlag()
            // vCPU 0: burns 200 ms of CPU once told to, then idles.
            let worker = try Self.idleThread(stop) {
                while !go.isRaised { NativeThread.sleep(nanoseconds: 1_000_000) }
                NativeThread.burnCPU(nanoseconds: 200_000_000)
                burned.raise()
            }
            // vCPU 1: spins until the end.
            let spinner = try #require(NativeThread { while !stop.isRaised {} })
            spinner.release()
            defer {
                stop.raise()
                worker.join()
                spinner.join()
            }
            _ = try client.attach(vmName: "stats-test", threadIDs: [worker.tid, spinner.tid])
            let workerBase = Self.kernelRuntime(worker.tid)
            go.raise()
            while !burned.isRaised { usleep(5_000) }

            let status = try client.status()
            let kernelDelta = Self.kernelRuntime(worker.tid) - workerBase
            let truth = try #require(status.vms.first?.vcpus.first?.hostTruth, "\(status.daemon.bpf)")
            #expect(truth.runtimeNanoseconds >= 200_000_000)
            // Counted from tracking (inside ATTACH), the kernel's from just after: a few ms apart at most.
            let difference = truth.runtimeNanoseconds > kernelDelta
                ? truth.runtimeNanoseconds - kernelDelta : kernelDelta - truth.runtimeNanoseconds
            #expect(difference < 5_000_000, "BPF \(truth.runtimeNanoseconds) ns, kernel \(kernelDelta) ns")
            #expect(truth.runDelayCount > 0)

            // The same truth in the metrics file, for Prometheus.
            func metric(_ selector: String) -> Double? {
                let text = (try? String(contentsOfFile: metricsPath, encoding: .utf8)) ?? ""
                let line = text.split(separator: "\n").first { $0.hasPrefix(selector + " ") }
                return line.flatMap { Double($0.split(separator: " ").last ?? "") }
            }
            let v0 = #"{vm="stats-test",vcpu="0"}"#
            let deadline = Date().addingTimeInterval(5)
            while (metric("vcpufreq_host_runtime_seconds_total" + v0) ?? 0) < 0.2, Date() < deadline { usleep(20_000) }
            #expect((metric("vcpufreq_host_runtime_seconds_total" + v0) ?? 0) >= 0.2)
            #expect((metric("vcpufreq_host_run_delay_seconds_count" + v0) ?? 0) > 0)
            #expect(metric(#"vcpufreq_host_run_delay_seconds_bucket{vm="stats-test",vcpu="0",le="+Inf"}"#)
                == metric("vcpufreq_host_run_delay_seconds_count" + v0))

            // The stats command over 500 ms while vCPU 1 spins.
            let spinnerBefore = Self.kernelRuntime(spinner.tid)
            let started = Date()
            let result = try DaemonProcess.runTool(["stats", "--socket", daemon.socketPath, "--json", "--interval-ms", "500"])
            let wall = Date().timeIntervalSince(started)
            let spinnerDelta = Double(Self.kernelRuntime(spinner.tid) - spinnerBefore) / 1e9
            #expect(result.status == 0, "\(result.error)")
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let report = try decoder.decode(StatsReport.self, from: Data(result.output.utf8))
            let vm = try #require(report.vms.first)
            #expect(vm.name == "stats-test")
            #expect(vm.vcpus.map(\.tid) == [worker.tid, spinner.tid])
            let host = try #require(vm.vcpus[1].host, "\(result.output)")
            #expect(host.intervalSeconds >= 0.45 && host.intervalSeconds <= wall)
            // A spinning thread runs whenever the 2 CPUs let it: some of the
            // interval, and never more than the kernel counted around it.
            #expect(host.runtimeShare > 0.05)
            #expect(host.runtimeShare * host.intervalSeconds <= spinnerDelta + 0.01)
            #expect(host.exitsPerSecond.userspace == 0)  // not a KVM thread

            // The table: a row per vCPU with its TID.
            let text = try DaemonProcess.runTool(["stats", "--socket", daemon.socketPath, "--interval-ms", "100"])
            #expect(text.status == 0, "\(text.error)")
            #expect(text.output.hasPrefix("bpf: loaded: "))
            #expect(text.output.contains("vm \"stats-test\""))
            #expect(text.output.contains("  1     \(spinner.tid)"))
        }

        @Test(
            "a reference-VMM vCPU attached to the daemon: its exits in STATUS and in vcpufreq stats",
            .enabled(if: FileSystems.exists("/dev/kvm"), "no /dev/kvm on this machine"))
        func kvmExitsThroughTheDaemon() throws {
            let daemon = try DaemonProcess("kvm", arguments: ["--bpf-pin-path", "none"])
            defer { daemon.stop() }
            let client = try daemon.connect()
            let vm = try VirtualMachine(vcpuCount: 2)
            let tids = vm.vcpus.map(\.threadID)
            _ = try client.attach(vmName: "kvm-test", threadIDs: tids)
            let address = KernelTests.KVMExits.mmioAddress
            func mmioExits(_ status: StatusDocument, vcpu: Int) -> UInt64? {
                status.vms.first?.vcpus[vcpu].hostTruth?.exits.userspace(reason: 6)
            }

            // One run of N stores: N + 1 MMIO returns to the VMM (the DONE mark), as the KVM test shows without a daemon.
            let before = try client.status()
            let run = try vm.vcpus[0].run(script: [.write32(address, value: 1, count: 300)])
            #expect(run.exits.mmioWrites == 300)
            let after = try client.status()
            let counted = try #require(mmioExits(after, vcpu: 0), "\(after.daemon.bpf)")
            #expect(counted - (mmioExits(before, vcpu: 0) ?? 0) == 301)
            #expect(mmioExits(after, vcpu: 1) == 0)

            // vcpufreq stats while the guest keeps exiting: a rate, never more
            // than the exits the VMM itself saw over the whole time.
            let stop = StopFlag()
            let runs = Box<UInt64>()
            let guest = try #require(
                NativeThread {
                    var completed: UInt64 = 0
                    while !stop.isRaised {
                        guard (try? vm.vcpus[0].run(script: [.write32(address, value: 1, count: 200)])) != nil else { break }
                        completed += 1
                    }
                    runs.set(completed)
                })
            guest.release()
            let result = try DaemonProcess.runTool(["stats", "--socket", daemon.socketPath, "--json", "--interval-ms", "400"])
            stop.raise()
            guest.join()
            #expect(result.status == 0, "\(result.error)")
            let decoder = JSONDecoder()
            decoder.keyDecodingStrategy = .convertFromSnakeCase
            let report = try decoder.decode(StatsReport.self, from: Data(result.output.utf8))
            let host = try #require(report.vms.first?.vcpus.first?.host, "\(result.output)")
            let mmio = try #require(host.exitsPerSecond.byReason.first { $0.name == "MMIO" }, "\(host.exitsPerSecond)")
            let seen = Double(try #require(runs.value) * 201)  // 200 stores and the DONE mark per run
            #expect(mmio.perSecond > 0)
            #expect(mmio.perSecond * host.intervalSeconds <= seen)
            // Every one a write (kvm_mmio fires just before kvm_userspace_exit: a sample may fall between).
            #expect(abs(host.exitsPerSecond.mmioWrites - mmio.perSecond) * host.intervalSeconds <= 2)
            #expect(report.vms.first?.vcpus[1].host?.exitsPerSecond.userspace == 0)
        }

        @Test(
            "without privileges the daemon runs on and says why, in the log and in status",
            .enabled(if: Support.which("setpriv") != nil, "needs setpriv (util-linux)"))
        func unprivileged() throws {
            let setpriv = try #require(Support.which("setpriv"))
            let daemon = try DaemonProcess(
                "unprivileged", arguments: ["--bpf-pin-path", "none"],
                prefix: [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all"])
            defer { daemon.stop() }
            let client = try daemon.connect()
            let status = try client.status()
            let documented = "loading BPF programs needs root, or CAP_BPF and CAP_PERFMON: "
            #expect(status.daemon.bpf.hasPrefix("not loaded: " + documented), "\(status.daemon.bpf)")
            #expect(status.daemon.bpf.contains("uid 65534"))
            #expect(status.daemon.capabilities["bpf_map"]?.hasPrefix("unavailable: " + documented) == true)
            #expect(!status.daemon.actuators.contains("bpf-map"))
            let text = try DaemonProcess.runTool(["status", "--socket", daemon.socketPath])
            #expect(text.output.contains("bpf: not loaded: " + documented), "\(text.output)")
            let log = daemon.stop()
            #expect(log.contains("BPF programs not loaded; running without host truth and the bpf-map clamp"), "\(log)")
            #expect(log.contains(documented), "\(log)")
        }

        @Test("--no-bpf: nothing loaded, and status says so")
        func switchedOff() throws {
            let daemon = try DaemonProcess("off", arguments: ["--no-bpf"])
            defer { daemon.stop() }
            let status = try daemon.connect().status()
            #expect(status.daemon.bpf == "not loaded: switched off (--no-bpf)")
            #expect(status.daemon.capabilities["bpf_map"] == "unavailable: the BPF programs are switched off (--no-bpf)")
        }
    }
}
