import Foundation
import Testing
import VCPUFreqCore
import VCPUFreqProtocol

@testable import VCPUFreqBPF

/// The sched_ext scheduler's pure parts: the cluster table, the support
/// verdict, the exit record, the status lines, the settings, the layouts of
/// vcpufreq_sched.h, and its section of `vcpufreq stats`. The scheduler
/// itself runs only on a sched_ext kernel (`vcpufreq scheduler selftest`).
@Suite struct SchedulerPureTests {
    static func cluster(_ name: String, _ cpus: [Int], _ capacity: Int) -> HostCluster {
        HostCluster(name: name, cpus: CPUList(cpus), capacity: capacity, frequenciesKHz: [1_000_000])
    }

    @Test("clusters are ranked by capacity, smallest first; ties keep the file's order")
    func ranking() throws {
        let host = HostTopology(clusters: [
            Self.cluster("big", [4, 5], 1024), Self.cluster("little", [0, 1, 2, 3], 380),
            Self.cluster("mid", [6], 760), Self.cluster("mid2", [7], 760),
        ])
        let table = try SchedulerClusters(host: host)
        #expect(table.ranked.map(\.name) == ["little", "mid", "mid2", "big"])
        #expect(table.ranked.map(\.capacity) == [380, 760, 760, 1024])
        #expect(table.ranked[0].cpus == [0, 1, 2, 3])
        #expect(table.rank(ofCPU: 5) == 3)
        #expect(table.rank(ofCPU: 6) == 1)
        #expect(table.rank(ofCPU: 9) == nil)
        #expect(table.description == "little (380): 0-3; mid (760): 6; mid2 (760): 7; big (1024): 4-5")
    }

    @Test(
        "topologies the scheduler cannot place by are refused, naming the cluster or CPU",
        arguments: [
            ([], "the topology has no host cluster to place by"),
            ((0..<9).map { SchedulerPureTests.cluster("c\($0)", [$0], 100 * $0) }, "the topology has 9 host clusters; the scheduler places by at most 8"),
            ([SchedulerPureTests.cluster("big", [1, 1024], 1024)], "cluster big: CPU 1024 is beyond the scheduler's 1024 CPUs"),
            ([SchedulerPureTests.cluster("a", [0, 1], 512), SchedulerPureTests.cluster("b", [1], 1024)], "CPU 1 is in clusters a and b"),
        ] as [([HostCluster], String)])
    func refused(clusters: [HostCluster], message: String) {
        #expect(throws: SchedulerTopologyError.self) { try SchedulerClusters(host: HostTopology(clusters: clusters)) }
        do {
            _ = try SchedulerClusters(host: HostTopology(clusters: clusters))
        } catch {
            #expect(error.description == message)
        }
    }

    @Test(
        "the support verdict names what is missing",
        arguments: [
            (
                SchedExtSupport(hasSysfs: false, state: nil, loadedScheduler: nil, missingKernelTypes: nil),
                "this kernel has no sched_ext (no /sys/kernel/sched_ext: built without CONFIG_SCHED_CLASS_EXT)"
            ),
            (
                SchedExtSupport(hasSysfs: true, state: "disabled", loadedScheduler: nil, missingKernelTypes: nil, btfProblem: "cannot read the kernel's BTF: x"),
                "cannot read the kernel's BTF: x"
            ),
            (
                SchedExtSupport(hasSysfs: true, state: "disabled", loadedScheduler: nil, missingKernelTypes: ["scx_bpf_dsq_peek", "struct sched_ext_ops"]),
                "this kernel's sched_ext lacks what the scheduler uses: scx_bpf_dsq_peek, struct sched_ext_ops (it is written against the kfuncs of Linux 7.3; 6.12 calls them scx_bpf_dispatch*)"
            ),
            (
                SchedExtSupport(hasSysfs: true, state: "enabled", loadedScheduler: "scx_rusty", missingKernelTypes: []),
                "another sched_ext scheduler is loaded: 'scx_rusty' (state enabled)"
            ),
            (
                SchedExtSupport(hasSysfs: true, state: "disabling", loadedScheduler: nil, missingKernelTypes: []),
                "sched_ext is disabling: another scheduler is being loaded or unloaded"
            ),
        ] as [(SchedExtSupport, String)])
    func verdict(support: SchedExtSupport, problem: String) {
        #expect(support.problem == problem)
    }

    @Test("a sched_ext kernel with every kfunc and nothing loaded can run it")
    func supported() {
        #expect(SchedExtSupport(hasSysfs: true, state: "disabled", loadedScheduler: nil, missingKernelTypes: []).problem == nil)
        // The kernel's scheduler name file holds an empty line when none is loaded on some kernels.
        #expect(SchedExtSupport(hasSysfs: true, state: "disabled", loadedScheduler: "", missingKernelTypes: []).problem == nil)
    }

    @Test(
        "exit records: the kernel's kinds, which are ejects and errors",
        arguments: [
            (64, "unregistered", false, false), (67, "sysrq", true, false), (1024, "error", true, true),
            (1025, "scheduler error", true, true), (1026, "watchdog", true, true), (2000, "exit kind 2000", true, true),
        ] as [(Int64, String, Bool, Bool)])
    func exitKinds(kind: Int64, name: String, eject: Bool, error: Bool) {
        let exit = SchedulerExit(kind: kind, code: 0, cpu: -1, reason: "", message: "")
        #expect(exit.kindName == name)
        #expect(exit.isEject == eject)
        #expect(exit.isError == error)
    }

    @Test("an exit's description: kind, the kernel's reason, its message")
    func exitDescription() {
        let stall = SchedulerExit(
            kind: SchedulerExit.watchdogKind, code: 0, cpu: 1, reason: "runnable task stall",
            message: "hog[123] failed to run for 5.2s")
        #expect(stall.description == "watchdog (runnable task stall): hog[123] failed to run for 5.2s")
        #expect(SchedulerExit(kind: 67, code: 0, cpu: -1, reason: "disabled by sysrq-S", message: "").description
            == "sysrq (disabled by sysrq-S)")
    }

    @Test("the status line for each state")
    func summaries() throws {
        var status = SchedulerStatus()
        #expect(status.summary == "not loaded: not started")
        status.state = .notLoaded("this kernel has no sched_ext")
        #expect(status.summary == "not loaded: this kernel has no sched_ext")
        status.clusters = try SchedulerClusters(
            host: HostTopology(clusters: [Self.cluster("big", [1], 1024), Self.cluster("little", [0], 512)]))
        status.hintPinPath = "/sys/fs/bpf/vcpufreq/util_hint"
        status.state = .running
        #expect(
            status.summary
                == "loaded: sched_ext scheduler 'vcpufreq' placing by 2 clusters (little (512): 0; big (1024): 1); hints from /sys/fs/bpf/vcpufreq/util_hint (no shared-page maps pinned beside it: the guests' slots are not read in place)")
        status.sharedSlotMaps = ["/sys/fs/bpf/vcpufreq/vm_pages"]
        #expect(status.summary.hasSuffix("hints from /sys/fs/bpf/vcpufreq/util_hint and the guests' shared-page slots, read in place"))
        status.state = .ejected(SchedulerExit(kind: 67, code: 0, cpu: 0, reason: "disabled by sysrq-S", message: ""))
        #expect(status.summary == "ejected by the kernel: sysrq (disabled by sysrq-S); the host is back on the fair scheduler")
        status.state = .stopped
        #expect(status.summary == "not loaded: stopped")
    }

    @Test("settings outside their ranges are named")
    func settings() {
        var settings = SchedulerSettings()
        #expect(settings.problem == nil)
        settings.sliceMicroseconds = 50
        #expect(settings.problem == "slice 50 µs is outside 100...100000")
        settings = SchedulerSettings()
        settings.boostMicroseconds = 200_000
        #expect(settings.problem == "boost 200000 µs is outside 0...100000")
        settings = SchedulerSettings()
        settings.boostSharePermille = 1001
        #expect(settings.problem == "boost share 1001 ‰ is outside 0...1000")
    }

    @Test("the defaults are those of vcpufreq_sched.h")
    func defaults() {
        let c = LibBPF.headerConstants
        let settings = SchedulerSettings()
        #expect(c["VCPUFREQ_SCHED_DEFAULT_SLICE_US"].map(UInt32.init) == settings.sliceMicroseconds)
        #expect(c["VCPUFREQ_SCHED_DEFAULT_BOOST_US"].map(UInt32.init) == settings.defaultBoostMicroseconds)
        #expect(c["VCPUFREQ_SCHED_DEFAULT_BOOST_SHARE"].map(UInt32.init) == settings.boostSharePermille)
        #expect(c["VCPUFREQ_SCHED_MAX_CLUSTERS"] == SchedulerClusters.maximumClusters)
        #expect(c["VCPUFREQ_SCHED_MAX_CPUS"] == SchedulerClusters.maximumCPUs)
        #expect(c["VCPUFREQ_SCHED_TIMEOUT_MS"] == 5000)
        #expect(c["VCPUFREQ_SCHED_MAX_LEAD_SLICES"] == 16)
    }
}

/// The documented layouts of vcpufreq_sched.h (docs/scheduler.md), by hand.
enum DocumentedSchedulerLayout {
    static let config = StructLayout(
        name: "vcpufreq_sched_config", size: 24,
        fields: [
            .init(name: "cluster_count", offset: 0, size: 4), .init(name: "slice_us", offset: 4, size: 4),
            .init(name: "boost_us", offset: 8, size: 4), .init(name: "default_boost_us", offset: 12, size: 4),
            .init(name: "boost_share_permille", offset: 16, size: 4), .init(name: "nr_cpus", offset: 20, size: 4),
        ])
    static let cluster = StructLayout(
        name: "vcpufreq_sched_cluster", size: 136,
        fields: [
            .init(name: "capacity", offset: 0, size: 4), .init(name: "cpu_count", offset: 4, size: 4),
            .init(name: "cpus", offset: 8, size: 128),
        ])
    static let cpu = StructLayout(
        name: "vcpufreq_sched_cpu", size: 48,
        fields: [
            .init(name: "util_sum", offset: 0, size: 8), .init(name: "hinted_runtime_ns", offset: 8, size: 8),
            .init(name: "boosted_runtime_ns", offset: 16, size: 8), .init(name: "vtime_now", offset: 24, size: 8),
            .init(name: "hinted_runnable", offset: 32, size: 4), .init(name: "cluster", offset: 36, size: 4),
            .init(name: "running_boosted", offset: 40, size: 4), .init(name: "hinted_queued", offset: 44, size: 4),
        ])
    static let counters = StructLayout(
        name: "vcpufreq_sched_counters", size: 120,
        fields: [
            "enqueued_fair", "enqueued_hinted", "placed_idle", "placed_busy", "no_cluster", "cap_overridden", "boosts",
            "boost_preemptions", "boosts_expired", "boosts_denied", "boosted_runtime_ns", "dispatched_own",
            "dispatched_stolen", "hint_lookups", "slot_reads",
        ].enumerated().map { .init(name: $0.element, offset: $0.offset * 8, size: 8) })
    static let exit = StructLayout(
        name: "vcpufreq_sched_exit", size: 1176,
        fields: [
            .init(name: "kind", offset: 0, size: 8), .init(name: "exit_code", offset: 8, size: 8),
            .init(name: "exit_cpu", offset: 16, size: 4), .init(name: "pad", offset: 20, size: 4),
            .init(name: "reason", offset: 24, size: 128), .init(name: "msg", offset: 152, size: 1024),
        ])
    static let all = [config, cluster, cpu, counters, exit]
}

@Suite struct SchedulerObjectTests {
    @Test("the host compiler's view of vcpufreq_sched.h is the documented layout", arguments: DocumentedSchedulerLayout.all)
    func hostLayout(documented: StructLayout) throws {
        #expect(try #require(LibBPF.schedulerLayouts().first { $0.name == documented.name }) == documented)
    }

    @Test("the scheduler object's BTF is the documented layout", arguments: DocumentedSchedulerLayout.all)
    func btfLayout(documented: StructLayout) throws {
        let object = try BPFObject(bytes: BundledObject.scheduler, name: "sched-layout")
        #expect(try #require(object.btfLayout(ofStruct: documented.name)) == documented)
    }

    @Test("the scheduler object: every op a struct_ops program, the util-hint map of the monitor's layout")
    func programs() throws {
        let object = try BPFObject(bytes: BundledObject.scheduler, name: "sched-programs")
        let ops = [
            "select_cpu", "enqueue", "dispatch", "runnable", "running", "stopping", "quiescent", "init_task", "exit_task",
            "enable", "init", "exit",
        ]
        let sections = Dictionary(uniqueKeysWithValues: object.programs.map { ($0.name, $0.section) })
        #expect(sections == Dictionary(uniqueKeysWithValues: ops.map { ("vcpufreq_\($0)", "struct_ops/vcpufreq_\($0)") }))
        #expect(object.btfLayout(ofStruct: "vcpufreq_util_hint") == DocumentedLayout.utilHint)
        // Every kfunc the object calls is one the loader checks for.
        for name in SchedExtSupport.requiredKernelFunctions {
            #expect(object.btfFunctionExists(name), "\(name) is checked but not called")
        }
    }
}

@Suite struct SchedulerStatsTests {
    static func scheduler(hinted: [UInt64], boosted: [UInt64], util: [Int64], boosts: UInt64) -> StatusDocument.Scheduler {
        StatusDocument.Scheduler(
            state: "loaded: sched_ext scheduler 'vcpufreq'", loaded: true, ejections: 0,
            cpus: hinted.indices.map {
                .init(
                    cpu: $0, cluster: $0 == 0 ? "little" : "big", utilSum: util[$0], hintedRunnable: util[$0] > 0 ? 1 : 0,
                    hintedRuntimeNanoseconds: hinted[$0], boostedRuntimeNanoseconds: boosted[$0])
            },
            counters: ["boosts": boosts, "boost_preemptions": boosts / 2, "placed_idle": 3])
    }

    @Test("per CPU: util_sum now, hinted and boosted shares of the interval; counter growth")
    func interval() throws {
        let earlier = Self.scheduler(hinted: [100_000_000, 0], boosted: [0, 0], util: [0, 0], boosts: 10)
        let later = Self.scheduler(hinted: [600_000_000, 1_500_000_000], boosted: [0, 200_000_000], util: [100, 900], boosts: 30)
        let interval = StatsReport.SchedulerInterval(earlier: earlier, later: later, seconds: 2)
        #expect(interval.cpus.map(\.utilSum) == [100, 900])
        #expect(interval.cpus.map(\.hintedShare) == [0.25, 0.75])
        #expect(interval.cpus.map(\.boostedShare) == [0, 0.1])
        #expect(interval.counters["boosts"] == 20)
        #expect(interval.counters["boost_preemptions"] == 10)
        #expect(interval.counters["placed_idle"] == 0)
        let text = interval.render()
        #expect(text.contains("  0     little    100       1       25.0%       0.0%"), "\(text)")
        #expect(text.contains("  1     big       900       1       75.0%       10.0%"), "\(text)")
        #expect(text.contains("boosts 20 (preempting 10, ran out 0, denied 0)"), "\(text)")
    }

    @Test("where a vCPU ran: each CPU's share of the time it ran in the interval")
    func cpuShares() {
        typealias T = StatusDocument.HostTruth.CPUTime
        let old = [T(cpu: 0, nanoseconds: 100), T(cpu: 1, nanoseconds: 1000)]
        let new = [T(cpu: 0, nanoseconds: 300), T(cpu: 1, nanoseconds: 1600), T(cpu: 3, nanoseconds: 200)]
        #expect(
            StatsReport.cpuShares(from: old, to: new)
                == [.init(cpu: 0, share: 0.2), .init(cpu: 1, share: 0.6), .init(cpu: 3, share: 0.2)])
        #expect(StatsReport.cpuShares(from: new, to: old) == nil)  // went backwards
        #expect(StatsReport.cpuShares(from: nil, to: new) == nil)
        #expect(StatsReport.cpuShares(from: old, to: old) == [])
    }

    @Test("STATUS with a scheduler and per-CPU runtime decodes to what was encoded")
    func roundTrip() throws {
        var truth = StatsReportTests.truth(at: 1, runtimeMilliseconds: 5)
        truth.runtimeByCPU = [.init(cpu: 1, nanoseconds: 5_000_000)]
        var document = StatsReportTests.document(vms: [(1, [StatsReportTests.vcpu(0, tid: 42, truth: truth)])])
        document.daemon.scheduler = Self.scheduler(hinted: [1, 2], boosted: [0, 1], util: [0, 900], boosts: 4)
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys  // the key-order assertion below needs a fixed order
        let data = try encoder.encode(document)
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"runtime_by_cpu\":[{\"cpu\":1,\"nanoseconds\":5000000}]"), "\(text)")
        #expect(text.contains("\"util_sum\":900"))
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        #expect(try decoder.decode(StatusDocument.self, from: data) == document)
    }
}
