import Testing
@testable import VCPUFreqProtocol

/// The metrics text of a hand-made status document: every family parses,
/// and the host-truth families carry the BPF counters (the run delay as a
/// cumulative histogram in seconds). Expected values are worked out here
/// from the document, not taken from the renderer.
@Suite struct PrometheusExpositionTests {
    static func vcpu(_ index: Int, truth: StatusDocument.HostTruth?) -> StatusDocument.VCPU {
        var vcpu = StatusDocument.VCPU(
            index: index, tid: Int32(100 + index), domain: 0, lastRequest: nil, utilMin: 512, utilMax: nil, latency: nil,
            cpus: nil, currentPerformanceKHz: 1_800_000, capped: false, requests: 7, kicks: 2, hintsApplied: 3,
            invalidAccesses: 0, actuationErrors: 0)
        vcpu.hostTruth = truth
        return vcpu
    }

    static let truth = StatusDocument.HostTruth(
        sampledAtNanoseconds: 1, runtimeNanoseconds: 1_500_000_000, onCPU: false, wakeups: 40, voluntarySwitches: 39,
        involuntarySwitches: 5, migrations: 3, lastCPU: 1, runDelaySumNanoseconds: 250_000,
        runDelayCount: 45,
        // 10 runs waited < 2 µs, 30 in [2, 4) µs, 5 in [8, 16) µs; none ≥ 16 µs.
        runDelayBuckets: [10, 30, 0, 5],
        exits: StatusDocument.Exits(
            userspace: [StatusDocument.ReasonCount(reason: 6, name: "mmio", count: 120)], userspaceInterrupted: 2,
            mmioReads: 4, mmioWrites: 116, pioOut: 1))

    static let document = StatusDocument(
        daemon: StatusDocument.Daemon(
            version: "test", pid: 1, uptimeSeconds: 12.5, actuators: "clamp=bpf-map", actuatorNotes: [], capabilities: [:],
            bpf: "loaded", dryRun: false, connections: 1, vcpus: 2, recoveredThreads: 0),
        vms: [
            StatusDocument.VM(
                id: 1, name: #"phone "a"\b"#, profile: "android", peerPID: 2, peerUID: 0, actuators: "", kickMode: "adaptive",
                polling: false, sharedMapped: true, mirrorMapped: true,
                counters: StatusDocument.Counters(
                    accesses: 9, requests: 14, kicks: 4, polls: 0, invalidAccesses: 1, actuationErrors: 0, threadsGone: 0,
                    restores: 0),
                invalidAccesses: ["wrong_width": 1], vcpus: [vcpu(0, truth: truth), vcpu(1, truth: nil)])
        ])

    @Test func hostTruthFamiliesCarryTheBPFCounters() throws {
        let metrics = PrometheusText(PrometheusExposition.render(Self.document))
        let vm = #"phone "a"\b"#
        let v0 = ["vm": vm, "vcpu": "0"]
        #expect(metrics.value("vcpufreq_requests_total", v0) == 7)
        #expect(metrics.value("vcpufreq_util_min", v0) == 512)
        #expect(metrics.value("vcpufreq_util_max", v0) == 1024)
        #expect(metrics.value("vcpufreq_invalid_accesses_total", ["vm": vm, "kind": "wrong_width"]) == 1)
        #expect(metrics.value("vcpufreq_host_runtime_seconds_total", v0) == 1.5)
        #expect(metrics.value("vcpufreq_host_wakeups_total", v0) == 40)
        #expect(metrics.value("vcpufreq_host_voluntary_switches_total", v0) == 39)
        #expect(metrics.value("vcpufreq_host_involuntary_switches_total", v0) == 5)
        #expect(metrics.value("vcpufreq_host_migrations_total", v0) == 3)
        #expect(metrics.value("vcpufreq_host_kvm_userspace_exits_total", v0.merging(["reason": "mmio"]) { $1 }) == 120)
        #expect(metrics.value("vcpufreq_host_kvm_userspace_exits_total", v0.merging(["reason": "interrupted"]) { $1 }) == 2)
        #expect(metrics.value("vcpufreq_host_kvm_mmio_total", v0.merging(["op": "write"]) { $1 }) == 116)
        #expect(metrics.value("vcpufreq_host_kvm_pio_total", v0.merging(["dir": "out"]) { $1 }) == 1)

        // The histogram: cumulative counts at 2, 4, 8, 16 µs, … and +Inf.
        #expect(metrics.types["vcpufreq_host_run_delay_seconds"] == "histogram")
        func bucket(_ le: String) -> Double? {
            metrics.value("vcpufreq_host_run_delay_seconds_bucket", v0.merging(["le": le]) { $1 })
        }
        #expect(bucket("2e-06") == 10)
        #expect(bucket("4e-06") == 40)
        #expect(bucket("8e-06") == 40)
        #expect(bucket("1.6e-05") == 45)
        #expect(bucket("1.048576") == 45)  // the last exported bound, 2^20 µs
        #expect(bucket("+Inf") == 45)
        #expect(metrics.value("vcpufreq_host_run_delay_seconds_count", v0) == 45)
        #expect(metrics.value("vcpufreq_host_run_delay_seconds_sum", v0) == 0.00025)
        let bounds = metrics.samples.filter { $0.name == "vcpufreq_host_run_delay_seconds_bucket" }.compactMap { $0.labels["le"] }
        #expect(bounds.count == PrometheusExposition.runDelayBuckets + 1)

        // vCPU 1 has no host truth: no host sample names it.
        let v1 = metrics.samples.filter { $0.labels["vcpu"] == "1" }
        #expect(!v1.isEmpty && v1.allSatisfy { !$0.name.hasPrefix("vcpufreq_host_") })
    }

    @Test func daemonWakeupsAndGuestSamplesAreCounters() throws {
        var document = Self.document
        document.daemon.wakeups = StatusDocument.Wakeups(total: 50, timer: 20, doorbells: 25, connections: 7, other: 1)
        var truth = Self.truth
        truth.guest = StatusDocument.GuestSamples(
            reads: 90, busy: 4, newRequests: 12, capped: 3, rejected: 1, utilizationReads: 80, utilizationSum: 40_000)
        document.vms[0].vcpus[0] = Self.vcpu(0, truth: truth)
        let metrics = PrometheusText(PrometheusExposition.render(document))
        #expect(metrics.types["vcpufreq_daemon_wakeups_total"] == "counter")
        #expect(metrics.value("vcpufreq_daemon_wakeups_total") == 50)
        #expect(metrics.value("vcpufreq_daemon_wakeup_events_total", ["source": "timer"]) == 20)
        #expect(metrics.value("vcpufreq_daemon_wakeup_events_total", ["source": "doorbell"]) == 25)
        #expect(metrics.value("vcpufreq_daemon_wakeup_events_total", ["source": "connection"]) == 7)
        let v0 = ["vm": #"phone "a"\b"#, "vcpu": "0"]
        #expect(metrics.value("vcpufreq_guest_reads_total", v0) == 90)
        #expect(metrics.value("vcpufreq_guest_busy_reads_total", v0) == 4)
        #expect(metrics.value("vcpufreq_guest_new_requests_total", v0) == 12)
        #expect(metrics.value("vcpufreq_guest_capped_reads_total", v0) == 3)
        #expect(metrics.value("vcpufreq_guest_utilization_sum_total", v0) == 40_000)
        // Without guest samples (the vCPU of the base document) no guest family is written.
        #expect(PrometheusText(PrometheusExposition.render(Self.document)).types["vcpufreq_guest_reads_total"] == nil)
    }

    /// A label value read back byte by byte, as a scraper does: a raw quote
    /// ends it, a raw newline ends the sample. "\r\n" and a quote followed
    /// by a combining mark are one Swift Character each, equal to neither,
    /// and passed unescaped.
    @Test(arguments: ["a\r\nb", "q\"\u{301}x", "x\\\u{301}", "\u{301}\"", #"phone "a"\b"#])
    func labelValuesReadBackByteByByte(name: String) {
        let bytes = Array(PrometheusExposition.escape(name).utf8)
        var decoded: [UInt8] = [], index = 0
        while index < bytes.count {
            #expect(bytes[index] != UInt8(ascii: "\"") && bytes[index] != UInt8(ascii: "\n"), "raw byte \(bytes[index]) at \(index)")
            if bytes[index] == UInt8(ascii: "\\"), index + 1 < bytes.count {
                index += 1
                decoded.append(bytes[index] == UInt8(ascii: "n") ? UInt8(ascii: "\n") : bytes[index])
            } else {
                decoded.append(bytes[index])
            }
            index += 1
        }
        #expect(decoded == Array(name.utf8))
    }

    @Test func aDocumentWithoutVMsHasOnlyTheDaemonGauges() {
        var empty = Self.document
        empty.vms = []
        let metrics = PrometheusText(PrometheusExposition.render(empty))
        #expect(Set(metrics.types.keys) == ["vcpufreq_up_seconds", "vcpufreq_vms", "vcpufreq_vcpus", "vcpufreq_recovered_threads"])
        #expect(metrics.value("vcpufreq_up_seconds") == 12.5)
        #expect(metrics.value("vcpufreq_vms") == 0)
    }
}

