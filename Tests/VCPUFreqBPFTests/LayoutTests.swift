import Testing

@testable import VCPUFreqBPF

/// The layouts docs/bpf.md documents, worked out by hand from the field list
/// (every field naturally aligned, no implicit padding).
enum DocumentedLayout {
    static let exitCounts = StructLayout(
        name: "vcpufreq_exit_counts", size: 456,
        fields: [
            .init(name: "kvm_exit", offset: 0, size: 8),
            .init(name: "userspace_exit", offset: 8, size: 48 * 8),
            .init(name: "userspace_exit_other", offset: 392, size: 8),
            .init(name: "userspace_exit_eintr", offset: 400, size: 8),
            .init(name: "userspace_exit_error", offset: 408, size: 8),
            .init(name: "mmio_read", offset: 416, size: 8),
            .init(name: "mmio_write", offset: 424, size: 8),
            .init(name: "mmio_unsatisfied_read", offset: 432, size: 8),
            .init(name: "pio_in", offset: 440, size: 8),
            .init(name: "pio_out", offset: 448, size: 8),
        ])

    static let threadStats = StructLayout(
        name: "vcpufreq_thread_stats", size: 912,
        fields: [
            .init(name: "runtime_ns", offset: 0, size: 8),
            .init(name: "wakeups", offset: 8, size: 8),
            .init(name: "voluntary_switches", offset: 16, size: 8),
            .init(name: "involuntary_switches", offset: 24, size: 8),
            .init(name: "migrations", offset: 32, size: 8),
            .init(name: "delay_sum_ns", offset: 40, size: 8),
            .init(name: "delay_count", offset: 48, size: 8),
            .init(name: "delay_hist", offset: 56, size: 32 * 8),
            .init(name: "switched_in_ns", offset: 312, size: 8),
            .init(name: "runnable_since_ns", offset: 320, size: 8),
            .init(name: "tracked_since_ns", offset: 328, size: 8),
            .init(name: "exec_base_ns", offset: 336, size: 8),
            .init(name: "run_delay_base_ns", offset: 344, size: 8),
            .init(name: "flags", offset: 352, size: 4),
            .init(name: "last_cpu", offset: 356, size: 4),
            .init(name: "exits", offset: 360, size: 456),
            .init(name: "guest", offset: 816, size: 96),
        ])

    static let guestSamples = StructLayout(
        name: "vcpufreq_guest_samples", size: 96,
        fields: [
            .init(name: "reads", offset: 0, size: 8),
            .init(name: "busy", offset: 8, size: 8),
            .init(name: "new_requests", offset: 16, size: 8),
            .init(name: "capped", offset: 24, size: 8),
            .init(name: "rejected", offset: 32, size: 8),
            .init(name: "util_reads", offset: 40, size: 8),
            .init(name: "util_sum", offset: 48, size: 8),
            .init(name: "latency_reads", offset: 56, size: 8),
            .init(name: "boost_reads", offset: 64, size: 8),
            .init(name: "last_read_ns", offset: 72, size: 8),
            .init(name: "last_sequence", offset: 80, size: 4),
            .init(name: "last_flags", offset: 84, size: 4),
            .init(name: "last_utilization", offset: 88, size: 4),
            .init(name: "last_perf_khz", offset: 92, size: 4),
        ])

    static let vcpuRef = StructLayout(
        name: "vcpufreq_vcpu_ref", size: 16,
        fields: [
            .init(name: "vm_index", offset: 0, size: 4),
            .init(name: "vcpu", offset: 4, size: 4),
            .init(name: "vm_id", offset: 8, size: 4),
            .init(name: "reserved", offset: 12, size: 4),
        ])

    static let vmCaps = StructLayout(
        name: "vcpufreq_vm_caps", size: 24,
        fields: [
            .init(name: "vm_id", offset: 0, size: 4),
            .init(name: "vcpu_count", offset: 4, size: 4),
            .init(name: "features", offset: 8, size: 4),
            .init(name: "util_cap", offset: 12, size: 4),
            .init(name: "boost_util", offset: 16, size: 4),
            .init(name: "max_perf_khz", offset: 20, size: 4),
        ])

    static let cpuInfo = StructLayout(
        name: "vcpufreq_cpu_info", size: 4,
        fields: [
            .init(name: "capacity", offset: 0, size: 2),
            .init(name: "cluster", offset: 2, size: 1),
            .init(name: "known", offset: 3, size: 1),
        ])

    static let utilHint = StructLayout(
        name: "vcpufreq_util_hint", size: 16,
        fields: [
            .init(name: "util_min", offset: 0, size: 2),
            .init(name: "util_max", offset: 2, size: 2),
            .init(name: "flags", offset: 4, size: 4),
            .init(name: "slice_us", offset: 8, size: 4),
            .init(name: "seq", offset: 12, size: 4),
        ])

    static let all = [threadStats, exitCounts, utilHint, guestSamples, vcpuRef, vmCaps, cpuInfo]
}

@Suite struct LayoutTests {
    @Test("the host compiler's view of vcpufreq_bpf.h is the documented layout", arguments: DocumentedLayout.all)
    func hostLayout(documented: StructLayout) throws {
        let host = try #require(LibBPF.hostLayouts().first { $0.name == documented.name })
        #expect(host == documented)
    }

    @Test("the BPF object's BTF (what the programs were compiled with) is the documented layout",
          arguments: DocumentedLayout.all)
    func btfLayout(documented: StructLayout) throws {
        let object = try BPFObject(bytes: BundledObject.vcpufreq, name: "layout")
        let btf = try #require(object.btfLayout(ofStruct: documented.name))
        #expect(btf == documented)
    }

    @Test("the constants of vcpufreq_bpf.h are the Swift ones")
    func constants() {
        let c = LibBPF.headerConstants
        #expect(c["VCPUFREQ_DELAY_BUCKETS"] == RunDelayHistogram.bucketCount)
        #expect(c["VCPUFREQ_USERSPACE_EXIT_REASONS"] == ExitCounts.countedReasons)
        #expect(c["VCPUFREQ_MAX_TRACKED_THREADS"].map(UInt32.init) == VCPUThreadMonitor.Configuration().maxTrackedThreads)
        #expect(c["VCPUFREQ_MAX_UTIL_HINTS"] == 4096)
        #expect(LibBPF.headerUtilHintPinPath == VCPUThreadMonitor.defaultUtilHintPinPath)
        #expect(LibBPF.threadStatsSize == DocumentedLayout.threadStats.size)
        #expect(LibBPF.utilHintSize == DocumentedLayout.utilHint.size)
        #expect(c["VCPUFREQ_PAGE_SIZE"] == 4096 && c["VCPUFREQ_PAGE_SIZE"] == BPFPageMap.pageSize)
        #expect(c["VCPUFREQ_MAX_PAGE_VMS"].map(UInt32.init) == VCPUThreadMonitor.Configuration().maxPageVMs)
        #expect(c["VCPUFREQ_MAX_CPUS"] == 4096)
        #expect(LibBPF.headerPinDirectory == BPFPins.defaultDirectory)
        #expect(BPFPins(utilHintPath: VCPUThreadMonitor.defaultUtilHintPinPath).directory == BPFPins.defaultDirectory)
    }

    @Test("the object has the documented programs, attached where documented")
    func programs() throws {
        let object = try BPFObject(bytes: BundledObject.vcpufreq, name: "programs")
        let sections = Dictionary(uniqueKeysWithValues: object.programs.map { ($0.name, $0.section) })
        #expect(
            sections == [
                "on_sched_switch": "tp_btf/sched_switch", "on_sched_wakeup": "tp_btf/sched_wakeup",
                "on_sched_wakeup_new": "tp_btf/sched_wakeup_new", "on_sched_migrate_task": "tp_btf/sched_migrate_task",
                "on_kvm_exit": "tracepoint/kvm/kvm_exit", "on_kvm_userspace_exit": "tracepoint/kvm/kvm_userspace_exit",
                "on_kvm_mmio": "tracepoint/kvm/kvm_mmio", "on_kvm_pio": "tracepoint/kvm/kvm_pio",
                "on_sched_stat_runtime": "tp_btf/sched_stat_runtime",
            ])
    }
}
