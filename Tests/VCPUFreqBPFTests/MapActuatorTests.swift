import Foundation
import SystemPackage
import Testing
import VCPUFreqCore
import VCPUFreqLinux

@testable import VCPUFreqBPF

/// The BPF-map actuator's decisions, without a kernel.
@Suite struct MapActuatorDecisionTests {
    static let slice = LatencyHint.slice(microseconds: 300)

    @Test(
        "the map entry is rewritten when the clamps or the latency hint change, not for affinity alone",
        arguments: [
            (nil, HostHint.neutral, false),
            (nil, HostHint(utilMin: 1), true),
            (HostHint(utilMin: 5), HostHint(utilMin: 5), false),
            (HostHint(utilMin: 5), HostHint(utilMin: 5, utilMax: 900), true),
            (HostHint(utilMin: 5), HostHint(utilMin: 5, latency: slice), true),
            (HostHint(utilMin: 5, latency: slice), HostHint(utilMin: 5, latency: .nice(-5)), true),
            (HostHint(utilMin: 5), HostHint(utilMin: 5, affinity: CPUList([0])), false),
        ] as [(HostHint?, HostHint, Bool)])
    func needsApply(previous: HostHint?, new: HostHint, expected: Bool) {
        let actuator = BPFMapActuator(monitor: VCPUThreadMonitor())
        #expect(actuator.needsApply(new, previous: previous) == expected)
        // The other actuators keep the facet rule.
        #expect(UclampActuator().needsApply(new, previous: previous) == ActuatorFacet.clamp.changed(from: previous, to: new))
    }

    @Test("the capability follows the monitor: available only when loaded and pinned")
    func capability() {
        #expect(BPFMapActuator.capability(of: MonitorStatus()) == .unavailable("the BPF programs are not loaded"))
        var status = MonitorStatus()
        status.state = .failed(.permissionDenied(operation: "map 'threads'", reason: "EPERM"))
        #expect(
            BPFMapActuator.capability(of: status)
                == .unavailable("loading BPF programs needs root, or CAP_BPF and CAP_PERFMON: map 'threads': EPERM"))
        status.state = .running
        #expect(BPFMapActuator.capability(of: status) == .unavailable("the util-hint map is not pinned: pinning is switched off"))
        status.missing = [.init(program: "-", target: "pin /x/util_hint", reason: "bpffs is not mounted at /x")]
        #expect(BPFMapActuator.capability(of: status) == .unavailable("the util-hint map is not pinned: bpffs is not mounted at /x"))
        status.missing = []
        status.utilHintPinPath = "/sys/fs/bpf/vcpufreq/util_hint"
        let verdict = BPFMapActuator.capability(of: status)
        #expect(verdict.isAvailable)
        #expect(verdict.reason.contains("/sys/fs/bpf/vcpufreq/util_hint"))
    }

    @Test("with(bpfMap:) replaces only that verdict, and the plan then picks bpf-map where nothing better exists")
    func planPicksMap() {
        let none = HostCapabilities.Status.unavailable("not here")
        let detected = HostCapabilities(
            uclamp: none, cgroupUclamp: none, cgroup2Mount: nil, eevdfSlice: .available("yes"),
            defaultSliceNanoseconds: 3_000_000, nice: .available("yes"), affinity: .available("yes"))
        #expect(!detected.bpfMap.isAvailable)
        #expect(detected.plan().clamp == .none)
        let withMap = detected.with(bpfMap: .available("pinned"))
        #expect(withMap.bpfMap == .available("pinned"))
        #expect(withMap.uclamp == none && withMap.eevdfSlice == detected.eevdfSlice)
        #expect(withMap.plan().clamp == .bpfMap)
        // A real clamp is preferred by default; asking for bpf-map first picks it.
        var uclampHost = withMap
        uclampHost.uclamp = .available("uclamp")
        #expect(uclampHost.plan().clamp == .uclamp)
        #expect(uclampHost.plan(clamp: [.bpfMap, .uclamp, .none]).clamp == .bpfMap)
    }
}

extension KernelTests {
    /// The actuator on real threads through a ThreadController, the pinned
    /// map read back by its path.
    @Suite struct MapActuator {
        /// A thread that blocks until the test ends (a vCPU thread between runs).
        static func idleThread(_ stop: StopFlag) throws -> NativeThread {
            let thread = try #require(NativeThread { while !stop.isRaised { NativeThread.sleep(nanoseconds: 1_000_000) } })
            thread.release()
            return thread
        }

        static func entry(_ map: BPFMap, _ tid: Int32) throws -> (min: UInt16, max: UInt16, flags: UInt32, slice: UInt32, seq: UInt32)? {
            try map.lookup(key: KernelTests.UtilHintMap.key(tid)).map(KernelTests.UtilHintMap.decode)
        }

        @Test("apply writes the entry, latency-only changes rewrite it, affinity-only does not, restore deletes it")
        func lifecycle() throws {
            try KernelTests.UtilHintMap.withPinnedMonitor("actuator") { monitor, path in
                let stop = StopFlag()
                let thread = try Self.idleThread(stop)
                defer {
                    stop.raise()
                    thread.join()
                }
                let actuator = BPFMapActuator(monitor: monitor)
                let controller = ThreadController(clamp: actuator, latency: nil, affinity: nil)
                let pinned = try BPFMap.openPinned(path: path)

                let attached = try controller.attach(tid: thread.tid, vm: "vm", vcpu: 0, domain: 0)
                #expect(attached.facets == [CapturedFacet(facet: .clamp, actuator: "bpf-map")])
                #expect(try Self.entry(pinned, thread.tid) == nil)  // attach changes nothing

                let first = HostHint(utilMin: 600, utilMax: 1024)
                try controller.apply(first, previous: nil, to: attached)
                var value = try #require(try Self.entry(pinned, thread.tid))
                #expect(value.min == 600 && value.max == 1024 && value.flags == 0 && value.slice == 0 && value.seq == 1)

                // The guest turns latency-sensitive: same clamps, a slice.
                let latency = HostHint(utilMin: 600, utilMax: 1024, latency: .slice(microseconds: 300))
                try controller.apply(latency, previous: first, to: attached)
                value = try #require(try Self.entry(pinned, thread.tid))
                #expect(value.flags == 1 && value.slice == 300 && value.seq == 2)

                // Only the CPUs change: nothing for the map.
                let pinnedCPUs = HostHint(utilMin: 600, utilMax: 1024, latency: .slice(microseconds: 300), affinity: CPUList([0]))
                try controller.apply(pinnedCPUs, previous: latency, to: attached)
                #expect(try Self.entry(pinned, thread.tid)?.seq == 2)
                #expect(controller.clampCounters.applied == 2)
                #expect(controller.clampCounters.unchanged == 1)

                let lower = HostHint(utilMin: 100, utilMax: 512)
                try controller.apply(lower, previous: pinnedCPUs, to: attached)
                value = try #require(try Self.entry(pinned, thread.tid))
                #expect(value.min == 100 && value.max == 512 && value.flags == 0 && value.slice == 0 && value.seq == 3)

                try controller.restore(attached)
                #expect(try Self.entry(pinned, thread.tid) == nil)
                #expect(controller.clampCounters.restored == 1)
            }
        }

        @Test("a stopped monitor: apply fails with ENODEV and is counted, restore of nothing is fine")
        func stoppedMonitor() throws {
            let monitor = try Support.startedMonitor()
            let stop = StopFlag()
            let thread = try Self.idleThread(stop)
            defer {
                stop.raise()
                thread.join()
            }
            let controller = ThreadController(clamp: BPFMapActuator(monitor: monitor), latency: nil, affinity: nil)
            let attached = try controller.attach(tid: thread.tid, vm: "vm", vcpu: 0, domain: 0)
            monitor.stop()
            #expect(throws: ThreadControlError.self) {
                try controller.apply(HostHint(utilMin: 1), previous: nil, to: attached)
            }
            #expect(controller.clampCounters.failed == 1)
            #expect(monitor.writeHint(tid: thread.tid, UtilHint(utilMin: 1)).errno == ENODEV)
            #expect(monitor.writeHint(tid: 0, UtilHint(utilMin: 1)).errno == EINVAL)
            #expect(monitor.deleteHint(tid: -3) == EINVAL)
        }

        @Test("a thread that exited still has its entry removed on restore")
        func exitedThread() throws {
            try KernelTests.UtilHintMap.withPinnedMonitor("exited") { monitor, path in
                let stop = StopFlag()
                let thread = try Self.idleThread(stop)
                let controller = ThreadController(clamp: BPFMapActuator(monitor: monitor), latency: nil, affinity: nil)
                let attached = try controller.attach(tid: thread.tid, vm: "vm", vcpu: 0, domain: 0)
                try controller.apply(HostHint(utilMin: 300), previous: nil, to: attached)
                stop.raise()
                thread.join()
                let pinned = try BPFMap.openPinned(path: path)
                #expect(try Self.entry(pinned, thread.tid)?.min == 300)
                try controller.restore(attached)
                #expect(try Self.entry(pinned, thread.tid) == nil)
            }
        }
    }
}
