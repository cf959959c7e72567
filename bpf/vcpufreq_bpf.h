/*
 * vcpufreq_bpf.h: the map keys and values shared by the BPF programs
 * (bpf/vcpufreq.bpf.c), the Swift module VCPUFreqBPF, and anyone else who
 * reads or writes these maps (a sched_ext scheduler consuming the util-hint
 * map, bpftool users). docs/bpf.md describes every field; the Swift tests
 * prove that this header, the BTF of the compiled object and the documented
 * offsets agree.
 *
 * All structs have explicit padding and only naturally aligned fields, so the
 * layout is the same for the host ABI and for the BPF target.
 */
#ifndef VCPUFREQ_BPF_H
#define VCPUFREQ_BPF_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* ---- Tracked threads: map "threads" (BPF_MAP_TYPE_HASH) ----------------- */

/* Most threads one monitor tracks at once: 1024 vCPUs (the scale target) plus
 * room for I/O threads of the same VMs. The map is preallocated; userspace may
 * lower or raise it before load. */
#define VCPUFREQ_MAX_TRACKED_THREADS 4096

/* Run-delay histogram buckets. Bucket 0 holds delays of 0..1 us, bucket i
 * (1 <= i < 31) holds [2^i, 2^(i+1)) us, bucket 31 everything from 2^31 us
 * (about 36 minutes) on. */
#define VCPUFREQ_DELAY_BUCKETS 32

/* kvm_userspace_exit reasons counted one by one (KVM_EXIT_UNKNOWN = 0 ...
 * KVM_EXIT_MEMORY_FAULT = 39 and a few spare); larger reasons are counted in
 * userspace_exit_other. */
#define VCPUFREQ_USERSPACE_EXIT_REASONS 48

/* Per-thread KVM exit counts, keyed by the TID that ran KVM_RUN. */
struct vcpufreq_exit_counts {
	__u64 kvm_exit;             /* tracepoint kvm/kvm_exit (any reason); never fires under PVM */
	__u64 userspace_exit[VCPUFREQ_USERSPACE_EXIT_REASONS]; /* kvm_userspace_exit by reason, errno == 0 */
	__u64 userspace_exit_other; /* reason >= VCPUFREQ_USERSPACE_EXIT_REASONS */
	__u64 userspace_exit_eintr; /* errno == -EINTR: KVM_RUN interrupted by a signal */
	__u64 userspace_exit_error; /* any other negative errno */
	__u64 mmio_read;            /* kvm_mmio type KVM_TRACE_MMIO_READ (1) */
	__u64 mmio_write;           /* kvm_mmio type KVM_TRACE_MMIO_WRITE (2) */
	__u64 mmio_unsatisfied_read;/* kvm_mmio type KVM_TRACE_MMIO_READ_UNSATISFIED (0): goes to userspace */
	__u64 pio_in;               /* kvm_pio rw == 0 */
	__u64 pio_out;              /* kvm_pio rw != 0 */
};

/* What the programs read from the guest half of a vCPU thread's shared-page
 * slot (a BPF-map page, see below) at its scheduling events: switch-in,
 * switch-out, wake-up and every sched_stat_runtime (the scheduler's
 * accounting at each tick). Values are after bounds and caps. */
struct vcpufreq_guest_samples {
	__u64 reads;            /* consistent reads of the guest half */
	__u64 busy;             /* reads that found the guest writing (odd sequence, or changed during the read) */
	__u64 new_requests;     /* consistent reads of a sequence the previous one had not seen */
	__u64 capped;           /* reads with a value above the VM's caps (cut to them) */
	__u64 rejected;         /* reads with a fault: unknown flags, utilization > 1024, perf 0 */
	__u64 util_reads;       /* reads with a utilization request */
	__u64 util_sum;         /* sum of those utilizations (after the cap): mean = util_sum / util_reads */
	__u64 latency_reads;    /* reads with the latency-sensitive flag honoured */
	__u64 boost_reads;      /* reads with a boost granted */
	__u64 last_read_ns;     /* bpf_ktime_get_ns() of the last consistent read; 0 = none */
	__u32 last_sequence;    /* guest sequence of that read */
	__u32 last_flags;       /* VCPUFREQ_GUEST_F_* as honoured */
	__u32 last_utilization; /* after the cap (0 without a utilization request) */
	__u32 last_perf_khz;    /* after the cap (0 without a performance request) */
};

/* flags of struct vcpufreq_thread_stats */
#define VCPUFREQ_THREAD_SEEN (1u << 0) /* the programs have seen the thread: the bases are set */

/* Value of map "threads", keyed by __u32 TID. Userspace inserts a zeroed value
 * (with tracked_since_ns and last_cpu = -1) to start tracking a thread: the
 * entry is the filter, an untracked thread costs one hash lookup per event.
 * It deletes the entry to stop. Counters only grow; the bookkeeping fields
 * are owned by the programs.
 *
 * Time on CPU and run delay come from the kernel's own per-task accounting
 * (se.sum_exec_runtime, sched_info.run_delay) read at each switch-out, so a
 * switch-in the tracepoint does not report still counts. On kernels without
 * CONFIG_SCHED_INFO the delays are timed from wake-up / preemption to the
 * switch-in instead. */
struct vcpufreq_thread_stats {
	__u64 runtime_ns;           /* time on CPU since tracked, up to the last switch-out */
	__u64 wakeups;              /* sched_wakeup + sched_wakeup_new */
	__u64 voluntary_switches;   /* switched out blocked (!preempt && prev_state != TASK_RUNNING) */
	__u64 involuntary_switches; /* switched out still runnable (preempt || prev_state == TASK_RUNNING) */
	__u64 migrations;           /* sched_migrate_task to another CPU */
	__u64 delay_sum_ns;         /* sum of runnable -> running delays */
	__u64 delay_count;          /* number of delays measured (one per run) */
	__u64 delay_hist[VCPUFREQ_DELAY_BUCKETS]; /* log2(us) histogram of those delays */
	/* Bookkeeping (not counters). */
	__u64 switched_in_ns;       /* bpf_ktime_get_ns() of the last switch-in seen; 0 = not known to be on CPU */
	__u64 runnable_since_ns;    /* without sched_info: when it last became runnable; 0 = not waiting */
	__u64 tracked_since_ns;     /* CLOCK_MONOTONIC when userspace inserted the entry */
	__u64 exec_base_ns;         /* se.sum_exec_runtime at tracked_since_ns (runtime_ns counts from it) */
	__u64 run_delay_base_ns;    /* sched_info.run_delay at the last switch-out */
	__u32 flags;                /* VCPUFREQ_THREAD_* */
	__s32 last_cpu;             /* CPU it last ran on; -1 = not seen yet */
	struct vcpufreq_exit_counts exits;
	struct vcpufreq_guest_samples guest; /* a vCPU with a BPF-map shared page: what its guest asked */
};

/* ---- Util hints: map "util_hint" (BPF_MAP_TYPE_HASH, pinned) -------------- */

/* Pinned at VCPUFREQ_UTIL_HINT_PIN_PATH by default (the daemon may be told
 * another path). It outlives the daemon, so a restarted daemon finds the
 * hints it left and a scheduler keeps reading. */
#define VCPUFREQ_UTIL_HINT_PIN_PATH "/sys/fs/bpf/vcpufreq/util_hint"

/* Room for every vCPU thread of a host at the scale target, twice over. */
#define VCPUFREQ_MAX_UTIL_HINTS 4096

/* Flags of struct vcpufreq_util_hint. */
#define VCPUFREQ_HINT_LATENCY_SENSITIVE (1u << 0) /* guest says: latency-sensitive work */
#define VCPUFREQ_HINT_BOOST             (1u << 1) /* guest asked for a short boost */

/* Value of map "util_hint", keyed by __u32 TID of a vCPU thread: the
 * "util_guest"-like hint a host BPF scheduler (sched_ext) can consume. The
 * daemon replaces the whole value with one map update, so a reader sees
 * either the old or the new value, never a mix. */
struct vcpufreq_util_hint {
	__u16 util_min;    /* lowest utilization to assume, 0..1024 */
	__u16 util_max;    /* highest utilization, 0..1024 (1024 = unclamped) */
	__u32 flags;       /* VCPUFREQ_HINT_* */
	__u32 slice_us;    /* requested EEVDF-style slice, microseconds; 0 = no preference */
	__u32 seq;         /* incremented (wrapping) by every update of this entry */
};

/* ---- Shared pages as BPF maps: maps "vm_pages", "vm_caps", "vcpu_threads",
 * "cpu_info" (pinned next to util_hint; docs/bpf.md "Shared pages") ------- */

/* Directory of the default pins; each map is pinned there under its name. */
#define VCPUFREQ_PIN_DIRECTORY "/sys/fs/bpf/vcpufreq"

/* One value of a VM's page map: a page of its shared page region. A region of
 * n vCPUs (64 + 64 n bytes, rounded up to pages) is an array of that many
 * pages, contiguous when mmap'ed: slot i lives in page (64 + 64 i) / 4096 at
 * offset (64 + 64 i) % 4096, never across a page boundary. */
#define VCPUFREQ_PAGE_SIZE 4096

/* VMs with a BPF-map page at once: entries of vm_pages and vm_caps (the
 * daemon's --max-vms default; it sizes the maps from it). */
#define VCPUFREQ_MAX_PAGE_VMS 64
/* Entries of cpu_info: host CPUs 0..4095. */
#define VCPUFREQ_MAX_CPUS 4096

/* Value of map "vcpu_threads" (BPF_MAP_TYPE_HASH, key __u32 TID, sized like
 * "threads"): the slot of a vCPU thread. Written by the daemon when the VM's
 * page is installed, deleted at detach. */
struct vcpufreq_vcpu_ref {
	__u32 vm_index; /* entry of vm_pages and vm_caps */
	__u32 vcpu;     /* slot index in the VM's page */
	__u32 vm_id;    /* the daemon's VM id: valid while vm_caps[vm_index].vm_id equals it */
	__u32 reserved;
};

/* Value of map "vm_caps" (BPF_MAP_TYPE_ARRAY, key vm_index): the operator's
 * bounds on what a program may act on for this VM. A guest value is
 * untrusted input: programs cut it to these before using it. */
struct vcpufreq_vm_caps {
	__u32 vm_id;        /* 0 = no VM at this index */
	__u32 vcpu_count;   /* slots in the VM's page */
	__u32 features;     /* VCPUFREQ_FEATURE_* (vcpufreq_abi.h) the host honours for this VM */
	__u32 util_cap;     /* highest utilization acted on, 0..1024 */
	__u32 boost_util;   /* what a granted boost lifts the utilization to (<= util_cap); 0 = no boost */
	__u32 max_perf_khz; /* highest performance request acted on: the VM's fastest vCPU */
};

/* Value of map "cpu_info" (BPF_MAP_TYPE_ARRAY, key host CPU): the daemon's
 * host topology, for sched_placement. */
struct vcpufreq_cpu_info {
	__u16 capacity; /* 0..1024 */
	__u8 cluster;   /* index of its [[host.cluster]] (0..14; 15 and above are reported as 15) */
	__u8 known;     /* 1 = the topology lists this CPU */
};

#endif /* VCPUFREQ_BPF_H */
