/*
 * vcpufreq_sched.h: the maps of the sched_ext scheduler (bpf/vcpufreq_sched.bpf.c)
 * that user space writes or reads: its configuration and the host's clusters
 * (written by the loader before the scheduler is attached), the per-CPU
 * additive utilization and counters (read by `vcpufreq stats` through the
 * daemon), and the exit record the kernel's eject leaves. docs/scheduler.md
 * describes every field; the Swift tests prove this header, the BTF of the
 * compiled object and the documented offsets agree.
 *
 * Explicit padding and naturally aligned fields only: the same layout for the
 * host ABI and for the BPF target.
 */
#ifndef VCPUFREQ_SCHED_H
#define VCPUFREQ_SCHED_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/* Host clusters the scheduler places by: the topology's clusters, sorted by
 * capacity. Eight covers every shipping SoC (three or four clusters) twice. */
#define VCPUFREQ_SCHED_MAX_CLUSTERS 8

/* Highest CPU count the scheduler accepts (map "cpu_state" entries, the bits
 * of a cluster's CPU set). A host with more possible CPUs is refused at
 * load with that reason: bpf_cpumask_populate needs the whole bitmap. */
#define VCPUFREQ_SCHED_MAX_CPUS 1024
#define VCPUFREQ_SCHED_CPU_WORDS (VCPUFREQ_SCHED_MAX_CPUS / 64)

/* The scheduler's dispatch queues (DSQ ids; the kernel's built-in ones have
 * bit 63 set): one per CPU, its id the CPU's number, ordered by weighted
 * virtual time on that CPU's own clock (cpu_state.vtime_now), like the fair
 * class's per-CPU run queues. */
#define VCPUFREQ_SCHED_CPU_DSQ(cpu) ((unsigned long long)(cpu))

/* Defaults the loader applies when the operator gives none (docs/scheduler.md). */
#define VCPUFREQ_SCHED_DEFAULT_SLICE_US 5000      /* every task's slice */
#define VCPUFREQ_SCHED_DEFAULT_BOOST_US 500       /* a boost, when the hint carries no slice */
#define VCPUFREQ_SCHED_DEFAULT_BOOST_SHARE 250    /* per mille of wall time a thread may run boosted */
#define VCPUFREQ_SCHED_TIMEOUT_MS 5000            /* the kernel's watchdog: a task runnable this long ejects us */
/* How far a task's vtime may lead its CPU's clock, in slices: what bounds
 * the wait of a task of tiny weight (nice 19 is charged 100 × its runtime). */
#define VCPUFREQ_SCHED_MAX_LEAD_SLICES 16

/* Value of map "sched_config" (BPF_MAP_TYPE_ARRAY, one entry). */
struct vcpufreq_sched_config {
	__u32 cluster_count;        /* entries of "clusters" in use (1...VCPUFREQ_SCHED_MAX_CLUSTERS) */
	__u32 slice_us;             /* slice of every task, µs */
	__u32 boost_us;             /* longest boost, µs; 0 = the hint's slice_us (the VM policy's latency slice) */
	__u32 default_boost_us;     /* boost of a hint without slice_us while boost_us is 0 */
	__u32 boost_share_permille; /* boost credit refill: share of wall time a thread may run boosted */
	__u32 nr_cpus;              /* CPUs the loader described in "cpu_state" (possible CPUs) */
};

/* Value of map "clusters" (BPF_MAP_TYPE_ARRAY, VCPUFREQ_SCHED_MAX_CLUSTERS
 * entries), index = rank by capacity: 0 is the smallest cluster. */
struct vcpufreq_sched_cluster {
	__u32 capacity;                         /* 0...1024, the topology's capacity */
	__u32 cpu_count;                        /* CPUs set in cpus */
	__u64 cpus[VCPUFREQ_SCHED_CPU_WORDS];   /* CPU set, bit n of word n / 64 = CPU n */
};

/* Value of map "cpu_state" (BPF_MAP_TYPE_ARRAY, VCPUFREQ_SCHED_MAX_CPUS
 * entries, key = CPU). The loader writes `cluster`; the scheduler owns the
 * rest. util_sum is the additive demand of the vCPU threads runnable on the
 * CPU: the sum of their hints' util_min, the RFC's util_guest seen per CPU
 * (uclamp takes the maximum instead). */
struct vcpufreq_sched_cpu {
	__s64 util_sum;             /* sum of util_min of the hinted threads runnable here (0...n × 1024) */
	__u64 hinted_runtime_ns;    /* time hinted threads ran here */
	__u64 boosted_runtime_ns;   /* of which boosted */
	__u64 vtime_now;            /* this CPU's virtual clock: the largest vtime a task started running with here */
	__u32 hinted_runnable;      /* hinted threads runnable here now */
	__u32 cluster;              /* rank of this CPU's cluster; VCPUFREQ_SCHED_NO_CLUSTER if none */
	__u32 running_boosted;      /* 1 while a boosted thread runs here */
	__u32 hinted_queued;        /* hinted threads in this CPU's DSQ: other clusters' CPUs do not steal from it then */
};
#define VCPUFREQ_SCHED_NO_CLUSTER 0xFFFFFFFFu

/* Value of map "counters" (BPF_MAP_TYPE_PERCPU_ARRAY, one entry): events,
 * summed over CPUs by user space. */
struct vcpufreq_sched_counters {
	__u64 enqueued_fair;        /* tasks without a hint queued on a CPU */
	__u64 enqueued_hinted;      /* hinted threads queued on a CPU of their cluster */
	__u64 placed_idle;          /* hinted threads sent to an idle CPU of their cluster */
	__u64 placed_busy;          /* hinted wake-ups with no idle CPU in the cluster */
	__u64 no_cluster;           /* hinted threads whose allowed CPUs meet no cluster: scheduled as fair */
	__u64 cap_overridden;       /* the thread's affinity only allows clusters above its util_max */
	__u64 boosts;               /* boosts granted at wake-up */
	__u64 boost_preemptions;    /* boosted wake-ups that preempted non-boosted work */
	__u64 boosts_expired;       /* boosts that ran out (the thread ran its whole allowance) */
	__u64 boosts_denied;        /* latency-flagged wake-ups without boost credit left */
	__u64 boosted_runtime_ns;   /* time threads ran boosted */
	__u64 dispatched_own;       /* dispatches from the CPU's own DSQ */
	__u64 dispatched_stolen;    /* dispatches of a task queued on another CPU (its CPU was busy) */
	__u64 hint_lookups;         /* lookups of the hint source */
	__u64 slot_reads;           /* of which answered from the guest's shared-page slot, read in place */
};

/* Value of map "exit_info" (BPF_MAP_TYPE_ARRAY, one entry): what the kernel
 * said in ops.exit() when it disabled the scheduler. kind 0 = still running. */
#define VCPUFREQ_SCHED_EXIT_REASON_LEN 128
#define VCPUFREQ_SCHED_EXIT_MSG_LEN 1024
struct vcpufreq_sched_exit {
	__s64 kind;       /* enum scx_exit_kind: 64 unregistered, 67 sysrq, 1024 error, 1026 watchdog stall, ... */
	__s64 exit_code;
	__s32 exit_cpu;   /* CPU that initiated the exit, -1 if none */
	__u32 pad;
	char reason[VCPUFREQ_SCHED_EXIT_REASON_LEN];  /* the kernel's text for kind */
	char msg[VCPUFREQ_SCHED_EXIT_MSG_LEN];        /* the details (for an error, what went wrong) */
};

#endif /* VCPUFREQ_SCHED_H */
