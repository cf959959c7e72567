/// The Prometheus text exposition (format 0.0.4) of a status document: what
/// `vcpufreq serve --metrics-file` writes. Pure: the daemon renders its
/// STATUS document and writes the text atomically.
///
/// Families (all prefixed `vcpufreq_`): the daemon's gauges; per VM
/// (`vm` label) kicks, polls, forwarded accesses, restores, polling state and
/// invalid accesses by kind; per vCPU (`vm`, `vcpu`) requests, applied
/// hints, actuation errors, util_min/util_max and cur_perf; and, for vCPU
/// threads the BPF programs track, the host's truth: runtime, wake-ups,
/// voluntary and involuntary switches, migrations, the run delay as a
/// histogram (`vcpufreq_host_run_delay_seconds`, buckets the programs' log2
/// µs buckets) and KVM exits by kind. docs/bpf.md describes the counters.
public enum PrometheusExposition {
    /// Run-delay buckets exported: bucket i of the programs ends at
    /// 2^(i+1) µs; the 20th at ~1.05 s. Later buckets count only in +Inf.
    public static let runDelayBuckets = 20

    public static func render(_ status: StatusDocument) -> String {
        var out = Output()
        out.family("up_seconds", "gauge", "Seconds since the daemon started.", [("", number(status.daemon.uptimeSeconds))])
        out.family("vms", "gauge", "Attached VMs.", [("", "\(status.vms.count)")])
        out.family("vcpus", "gauge", "Attached vCPUs.", [("", "\(status.daemon.vcpus)")])
        out.family("recovered_threads", "gauge", "Threads restored at start from a killed daemon's journal.",
                   [("", "\(status.daemon.recoveredThreads)")])
        if let wakeups = status.daemon.wakeups {
            out.family("daemon_wakeups_total", "counter", "Wake-ups of the daemon's loop (epoll_wait returns with events).",
                       [("", "\(wakeups.total)")])
            out.family("daemon_wakeup_events_total", "counter", "Events the daemon's loop woke up for, by source.", [
                ("{source=\"timer\"}", "\(wakeups.timer)"), ("{source=\"doorbell\"}", "\(wakeups.doorbells)"),
                ("{source=\"connection\"}", "\(wakeups.connections)"), ("{source=\"other\"}", "\(wakeups.other)"),
            ])
        }

        var perVM = Families()
        var perVCPU = Families()
        var host = Families()
        for vm in status.vms {
            let vmLabel = "vm=\"\(escape(vm.name))\""
            perVM.add("kicks_total", vmLabel, vm.counters.kicks)
            perVM.add("polls_total", vmLabel, vm.counters.polls)
            perVM.add("accesses_total", vmLabel, vm.counters.accesses)
            perVM.add("restores_total", vmLabel, vm.counters.restores)
            perVM.add("polling", vmLabel, vm.polling ? 1 : 0)
            for (kind, count) in vm.invalidAccesses.sorted(by: { $0.key < $1.key }) {
                perVM.add("invalid_accesses_total", "\(vmLabel),kind=\"\(escape(kind))\"", count)
            }
            for vcpu in vm.vcpus {
                let labels = "\(vmLabel),vcpu=\"\(vcpu.index)\""
                perVCPU.add("requests_total", labels, vcpu.requests)
                perVCPU.add("hints_applied_total", labels, vcpu.hintsApplied)
                perVCPU.add("actuation_errors_total", labels, vcpu.actuationErrors)
                perVCPU.add("util_min", labels, UInt64(vcpu.utilMin ?? 0))
                perVCPU.add("util_max", labels, UInt64(vcpu.utilMax ?? 1024))
                perVCPU.add("cur_perf_khz", labels, UInt64(vcpu.currentPerformanceKHz))
                if let truth = vcpu.hostTruth { host.addHostTruth(truth, labels: labels) }
            }
        }
        for families in [perVM, perVCPU, host] {
            for (name, lines) in families.lines.sorted(by: { $0.key < $1.key }) {
                let (type, help) = Self.help[name] ?? ("untyped", name)
                out.family(name, type, help, lines)
            }
        }
        return out.text
    }

    static let help: [String: (String, String)] = [
        "kicks_total": ("counter", "Doorbell kicks received."),
        "polls_total": ("counter", "Polls of the shared page."),
        "accesses_total": ("counter", "Forwarded register accesses."),
        "restores_total": ("counter", "Threads restored."),
        "polling": ("gauge", "1 while kicks are suppressed."),
        "invalid_accesses_total": ("counter", "Invalid guest accesses by kind."),
        "requests_total": ("counter", "Guest requests per vCPU."),
        "hints_applied_total": ("counter", "Hint changes applied per vCPU."),
        "actuation_errors_total": ("counter", "Failed hint applications per vCPU."),
        "util_min": ("gauge", "Applied util_min."),
        "util_max": ("gauge", "Applied util_max."),
        "cur_perf_khz": ("gauge", "cur_perf the guest reads, kHz."),
        "host_runtime_seconds_total": ("counter", "Time the vCPU thread ran on a CPU since tracked (BPF)."),
        "host_wakeups_total": ("counter", "Wake-ups of the vCPU thread (BPF)."),
        "host_voluntary_switches_total": ("counter", "Times the vCPU thread blocked (BPF)."),
        "host_involuntary_switches_total": ("counter", "Times the vCPU thread was preempted while runnable (BPF)."),
        "host_migrations_total": ("counter", "Moves of the vCPU thread to another CPU (BPF)."),
        "host_run_delay_seconds": ("histogram", "Runnable-to-running delays of the vCPU thread (BPF, log2 buckets)."),
        "host_kvm_exits_total": ("counter", "Guest exits (kvm_exit tracepoint; never fires under PVM)."),
        "host_kvm_userspace_exits_total": ("counter", "Returns from KVM_RUN to the VMM by reason (BPF)."),
        "host_kvm_mmio_total": ("counter", "MMIO accesses KVM saw, by operation (BPF)."),
        "host_kvm_pio_total": ("counter", "Port I/O KVM saw, by direction (BPF)."),
        "guest_reads_total": ("counter", "Consistent reads of the guest's slot by the host's BPF programs (BPF-map page)."),
        "guest_busy_reads_total": ("counter", "Reads of the guest's slot refused: the guest was writing it (BPF)."),
        "guest_new_requests_total": ("counter", "Guest requests the host's BPF programs saw (BPF)."),
        "guest_capped_reads_total": ("counter", "Reads with a guest value above the VM's cap (BPF)."),
        "guest_rejected_reads_total": ("counter", "Reads with a malformed guest value (BPF)."),
        "guest_utilization_reads_total": ("counter", "Reads with a guest utilization request (BPF)."),
        "guest_utilization_sum_total": ("counter", "Sum of the guest utilizations read, after the cap (BPF); / reads = mean."),
    ]

    /// Samples of several families, collected VM by VM, written family by
    /// family. A sample is (what follows the family name — `{labels}`, or
    /// `_bucket{labels}` in a histogram — and its value).
    struct Families {
        var lines: [String: [(String, String)]] = [:]

        mutating func add(_ name: String, _ labels: String, _ value: UInt64) {
            add(name, labels, "\(value)")
        }

        mutating func add(_ name: String, _ labels: String, _ value: String, suffix: String = "") {
            lines[name, default: []].append(("\(suffix){\(labels)}", value))
        }

        mutating func addHostTruth(_ truth: StatusDocument.HostTruth, labels: String) {
            add("host_runtime_seconds_total", labels, number(Double(truth.runtimeNanoseconds) / 1e9))
            add("host_wakeups_total", labels, truth.wakeups)
            add("host_voluntary_switches_total", labels, truth.voluntarySwitches)
            add("host_involuntary_switches_total", labels, truth.involuntarySwitches)
            add("host_migrations_total", labels, truth.migrations)
            // The histogram: cumulative buckets by upper bound (le), +Inf, sum
            // and count; "_bucket"/"_sum"/"_count" samples of one family.
            let delay = "host_run_delay_seconds"
            var cumulative: UInt64 = 0
            for index in 0..<PrometheusExposition.runDelayBuckets {
                cumulative &+= index < truth.runDelayBuckets.count ? truth.runDelayBuckets[index] : 0
                let bound = Double(UInt64(1) << (index + 1)) / 1e6
                add(delay, "\(labels),le=\"\(number(bound))\"", "\(cumulative)", suffix: "_bucket")
            }
            // +Inf and _count from the same buckets, so they agree even if the
            // programs counted a run between reading the buckets and the count.
            let total = truth.runDelayBuckets.reduce(0, &+)
            add(delay, "\(labels),le=\"+Inf\"", "\(total)", suffix: "_bucket")
            add(delay, labels, number(Double(truth.runDelaySumNanoseconds) / 1e9), suffix: "_sum")
            add(delay, labels, "\(total)", suffix: "_count")
            let exits = truth.exits
            add("host_kvm_exits_total", labels, exits.kvmExits)
            for reason in exits.userspace {
                add("host_kvm_userspace_exits_total", "\(labels),reason=\"\(escape(reason.name))\"", reason.count)
            }
            add("host_kvm_userspace_exits_total", "\(labels),reason=\"interrupted\"", exits.userspaceInterrupted)
            add("host_kvm_userspace_exits_total", "\(labels),reason=\"error\"", exits.userspaceErrors)
            add("host_kvm_mmio_total", "\(labels),op=\"read\"", exits.mmioReads)
            add("host_kvm_mmio_total", "\(labels),op=\"write\"", exits.mmioWrites)
            add("host_kvm_mmio_total", "\(labels),op=\"unsatisfied_read\"", exits.mmioUnsatisfiedReads)
            add("host_kvm_pio_total", "\(labels),dir=\"in\"", exits.pioIn)
            add("host_kvm_pio_total", "\(labels),dir=\"out\"", exits.pioOut)
            if let guest = truth.guest {
                add("guest_reads_total", labels, guest.reads)
                add("guest_busy_reads_total", labels, guest.busy)
                add("guest_new_requests_total", labels, guest.newRequests)
                add("guest_capped_reads_total", labels, guest.capped)
                add("guest_rejected_reads_total", labels, guest.rejected)
                add("guest_utilization_reads_total", labels, guest.utilizationReads)
                add("guest_utilization_sum_total", labels, guest.utilizationSum)
            }
        }
    }

    struct Output {
        var text = ""

        /// One family: HELP, TYPE, its samples (each: what follows the name, value).
        mutating func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            text += "# HELP vcpufreq_\(name) \(help)\n# TYPE vcpufreq_\(name) \(type)\n"
            for (selector, value) in samples { text += "vcpufreq_\(name)\(selector) \(value)\n" }
        }
    }

    /// A label value as the format wants it: backslash, quote and newline
    /// escaped. Scalar by scalar: a Character is a grapheme cluster, and
    /// "\r\n" or a quote followed by a combining mark is one, equal to
    /// neither "\n" nor "\"", so a name holding one would pass unescaped.
    static func escape(_ text: String) -> String {
        var out = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A float sample value (Swift's shortest round-tripping form, which
    /// Prometheus parses: "0.5", "2e-06", "1234.5").
    static func number(_ value: Double) -> String { "\(value)" }
}
