// SPDX-License-Identifier: GPL-2.0-only
/*
 * vcpufreq_sched.bpf.c: a sched_ext scheduler that acts on the guests' hints.
 *
 * Every task of the host is scheduled here (full switch), on per-CPU
 * queues in weighted virtual-time order, like the fair class's run queues:
 * each task is charged its runtime scaled by 100 / weight against the clock
 * of the CPU it runs on; a task waking from sleep banks at most one slice of
 * credit, and none may lead its CPU's clock by more than
 * VCPUFREQ_SCHED_MAX_LEAD_SLICES slices (what bounds the wait of a nice-19
 * task). A task that moves to another CPU keeps its lag against the new
 * CPU's clock. An idle CPU takes queued work from other CPUs. vCPU threads
 * with an entry in the hint source (read_hint) are placed by capacity:
 *
 *   - the cluster: the smallest whose capacity covers util_min, among the
 *     clusters the thread's affinity allows, never a bigger one than the
 *     smallest cluster covering util_max (the VM's cap holds) — unless the
 *     affinity allows only bigger ones (counted: cap_overridden);
 *   - an idle CPU of that cluster first (the kernel's idle tracking, the
 *     thread's previous CPU preferred), else the queue of a CPU of the
 *     cluster; CPUs of other clusters do not take work from a queue holding
 *     hinted threads.
 *
 * A latency-sensitive or boost flag in the hint makes a wake-up a boost: the
 * thread goes ahead of non-boosted work on a CPU of its cluster, preempting
 * it when no CPU is idle, for at most one boost allowance of CPU time (the
 * hint's slice_us, i.e. the VM policy's latency slice, or the operator's
 * boost_us). Allowances come out of a per-thread credit refilled at
 * boost_share_permille of wall time: a thread that boosts too often sees its
 * boosts shrink to nothing ("decay"). Boosted runtime is charged to the
 * thread's vtime like any other, so it is paid back in fair order.
 *
 * Per CPU, util_sum adds the util_min of the hinted threads runnable there:
 * the additive demand of the RFC's util_guest, which uclamp (a maximum)
 * cannot express. The kernel's cpuperf target is left alone.
 *
 * The fallback is the kernel's: when it ejects us (error, watchdog, sysrq-S,
 * unregistration) every task returns to the fair class; ops.exit() leaves
 * the reason in "exit_info" and posts to "exit_events", whose descriptor the
 * loader polls.
 *
 * Layouts: vcpufreq_sched.h and docs/scheduler.md.
 */
#include "vcpufreq_sched_kernel.h"
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "vcpufreq_bpf.h"
#include "vcpufreq_sched.h"
#include "vcpufreq_slot.h"

char LICENSE[] SEC("license") = "GPL";

/* ---- Maps ----------------------------------------------------------------- */

/* The daemon's util-hint map: the loader points this at the pinned map. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VCPUFREQ_MAX_UTIL_HINTS);
	__type(key, __u32);
	__type(value, struct vcpufreq_util_hint);
} util_hint SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vcpufreq_sched_config);
} sched_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VCPUFREQ_SCHED_MAX_CLUSTERS);
	__type(key, __u32);
	__type(value, struct vcpufreq_sched_cluster);
} clusters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VCPUFREQ_SCHED_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct vcpufreq_sched_cpu);
} cpu_state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vcpufreq_sched_counters);
} counters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct vcpufreq_sched_exit);
} exit_info SEC(".maps");

/* Readable (epoll) once ops.exit() ran: the loader's eject notification. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} exit_events SEC(".maps");

/* The clusters' CPU sets as kernel cpumasks, built by ops.init(). */
struct cluster_mask {
	struct bpf_cpumask __kptr *mask;
};
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VCPUFREQ_SCHED_MAX_CLUSTERS);
	__type(key, __u32);
	__type(value, struct cluster_mask);
} cluster_masks SEC(".maps");

/* Per task: its virtual time, its boost and its share of a CPU's util_sum. */
struct task_ctx {
	__u64 vtime;          /* weighted virtual time, on the clock of vtime_cpu */
	__u64 started_at;     /* scx_bpf_now() when it last started running */
	__u64 boost_left_ns;  /* what is left of the current boost; 0 = not boosted */
	__u64 credit_ns;      /* boost credit */
	__u64 credit_at;      /* when the credit was last refilled */
	__s32 util_cpu;       /* CPU whose util_sum holds util_added; -1 = none */
	__u32 util_added;
	__u32 boosted_run;    /* the run in progress is boosted */
	__u32 hinted_run;     /* the run in progress is of a hinted thread */
	__s32 vtime_cpu;      /* the CPU whose clock vtime is on; -1 = none yet */
	__s32 queued_cpu;     /* where this hinted thread is counted in hinted_queued; -1 = not */
};
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctxs SEC(".maps");

/* ---- Helpers -------------------------------------------------------------- */

#define NSEC_PER_USEC 1000ULL
#define ZERO_KEY 0

static __always_inline struct task_struct___sched *sched_task(struct task_struct *p)
{
	return (struct task_struct___sched *)p;
}

static __always_inline struct vcpufreq_sched_config *config(void)
{
	__u32 key = ZERO_KEY;

	return bpf_map_lookup_elem(&sched_config, &key);
}

static __always_inline struct vcpufreq_sched_counters *stats(void)
{
	__u32 key = ZERO_KEY;

	return bpf_map_lookup_elem(&counters, &key);
}

#define COUNT(field) do {                                   \
	struct vcpufreq_sched_counters *c__ = stats();      \
	if (c__)                                            \
		c__->field++;                               \
} while (0)

static __always_inline struct vcpufreq_sched_cpu *cpu_slot(s32 cpu)
{
	__u32 key = (__u32)cpu;

	if (cpu < 0)
		return NULL;
	return bpf_map_lookup_elem(&cpu_state, &key);
}

static __always_inline struct task_ctx *task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctxs, p, 0, 0);
}

static __always_inline __u64 slice_ns(const struct vcpufreq_sched_config *cfg)
{
	return (cfg && cfg->slice_us ? cfg->slice_us : VCPUFREQ_SCHED_DEFAULT_SLICE_US) * NSEC_PER_USEC;
}

/* ---- The input: one lookup ------------------------------------------------ */

/* What the scheduler knows about a vCPU thread. */
struct sched_hint {
	__u16 util_min;
	__u16 util_max;
	__u32 flags;      /* VCPUFREQ_HINT_* */
	__u32 slice_us;
};

/*
 * The scheduler's only input about vCPU threads: the hint of task p, if it
 * has one. First the guest's own request, read in place from the vCPU's
 * shared-page slot (vcpufreq_slot.h: vcpu_threads -> vm_caps -> vm_pages,
 * seqlock read, every value cut to the VM's caps), so a new request acts at
 * the very next scheduling event with no daemon wake-up: util_min is the
 * guest's utilization (a granted boost lifts it to the VM's boost_util),
 * util_max the VM's cap, the latency and boost flags the guest's. The VM's
 * latency slice comes from the daemon's util-hint entry when there is one.
 * Without a slot (no BPF-map page, never published, busy) the daemon's
 * util-hint map keyed by TID. Values are sanitised here (min <= max <= 1024)
 * so a bad entry cannot steer the rest.
 */
static __always_inline bool read_hint(struct task_struct *p, struct sched_hint *out)
{
	__u32 tid = (__u32)sched_task(p)->pid;
	struct vcpufreq_util_hint *entry;
	struct vcpufreq_slot_ref ref;
	struct vcpufreq_request request;
	__u16 lo, hi;

	if (!tid)
		return false;
	COUNT(hint_lookups);
	entry = bpf_map_lookup_elem(&util_hint, &tid);
	if (vcpufreq_slot_of_task(tid, &ref) && vcpufreq_read_request(&ref, &request) == VCPUFREQ_READ_OK
	    && (request.flags & VCPUFREQ_GUEST_F_UTIL_VALID)) {
		__u32 cap = vcpufreq_load(&ref.caps->util_cap);
		__u32 util = request.utilization;

		if (cap > VCPUFREQ_UTIL_MAX)
			cap = VCPUFREQ_UTIL_MAX;
		if ((request.flags & VCPUFREQ_GUEST_F_BOOST) && request.boost_util > util)
			util = request.boost_util;
		out->util_max = cap;
		out->util_min = util > cap ? cap : util;
		out->flags = 0;
		if (request.flags & VCPUFREQ_GUEST_F_LATENCY_SENSITIVE)
			out->flags |= VCPUFREQ_HINT_LATENCY_SENSITIVE;
		if (request.flags & VCPUFREQ_GUEST_F_BOOST)
			out->flags |= VCPUFREQ_HINT_BOOST;
		out->slice_us = entry ? entry->slice_us : 0;
		COUNT(slot_reads);
		return true;
	}
	if (!entry)
		return false;
	hi = entry->util_max > 1024 ? 1024 : entry->util_max;
	lo = entry->util_min > hi ? hi : entry->util_min;
	out->util_min = lo;
	out->util_max = hi;
	out->flags = entry->flags;
	out->slice_us = entry->slice_us;
	return true;
}

/* ---- Placement ------------------------------------------------------------ */

static __always_inline struct bpf_cpumask *cluster_cpus(__u32 rank)
{
	__u32 key = rank;
	struct cluster_mask *slot = bpf_map_lookup_elem(&cluster_masks, &key);

	return slot ? slot->mask : NULL;
}

/*
 * The cluster a hinted thread belongs on (its rank), or -1 when its allowed
 * CPUs meet no cluster. Clusters are ranked by capacity, smallest first.
 */
static __always_inline s32 choose_cluster(struct task_struct *p, const struct sched_hint *hint)
{
	const struct cpumask *allowed = sched_task(p)->cpus_ptr;
	struct vcpufreq_sched_config *cfg = config();
	s32 cap_rank = -1, best = -1, biggest_within_cap = -1;
	struct vcpufreq_sched_cluster *cluster;
	struct bpf_cpumask *cpus;
	__u32 rank, count;

	if (!cfg)
		return -1;
	count = cfg->cluster_count;
	for (rank = 0; rank < VCPUFREQ_SCHED_MAX_CLUSTERS; rank++) {
		__u32 key = rank; /* the counter stays in a register */

		if (rank >= count)
			break;
		cluster = bpf_map_lookup_elem(&clusters, &key);
		cpus = cluster_cpus(rank);
		if (!cluster || !cpus)
			break;
		/* The cap: the smallest cluster that covers util_max; none bigger. */
		if (cap_rank < 0 && cluster->capacity >= hint->util_max)
			cap_rank = rank;
		if (!bpf_cpumask_intersects((const struct cpumask *)cpus, allowed))
			continue;
		if (cap_rank >= 0 && (s32)rank > cap_rank) {
			/* Only bigger clusters left: take one only when the
			 * affinity allows nothing within the cap. */
			if (best < 0 && biggest_within_cap < 0) {
				COUNT(cap_overridden);
				return rank;
			}
			break;
		}
		biggest_within_cap = rank;
		if (best < 0 && cluster->capacity >= hint->util_min) {
			best = rank;
			break;
		}
	}
	/* util_min beyond every allowed cluster within the cap: the biggest of them. */
	if (best < 0)
		best = biggest_within_cap;
	return best;
}

/* An idle CPU of the cluster that p may use (its previous CPU preferred), or < 0. */
static __always_inline s32 idle_cpu_in(struct task_struct *p, struct bpf_cpumask *cpus, s32 prev_cpu, u64 wake_flags)
{
	struct scx_bpf_select_cpu_and_args args = {
		.prev_cpu = prev_cpu,
		.wake_flags = wake_flags,
		.flags = 0,
	};

	return __scx_bpf_select_cpu_and(p, (const struct cpumask *)cpus, &args);
}

static __always_inline void insert_vtime(struct task_struct *p, u64 dsq, u64 slice, u64 vtime, u64 enq_flags)
{
	struct scx_bpf_dsq_insert_vtime_args args = {
		.dsq_id = dsq,
		.slice = slice,
		.vtime = vtime,
		.enq_flags = enq_flags,
	};

	__scx_bpf_dsq_insert_vtime(p, &args);
}

/*
 * Moves p's vtime onto CPU cpu's clock, keeping its lag or lead (a new task
 * starts at the clock). Saturating: a lag bigger than the new clock starts it
 * at 0. (vtime - old clock + new clock wrapped to ~2^64 there, running() made
 * that the CPU's clock, and from then on every task queued there was clamped
 * to the same wrapped ceiling: a FIFO that ignored nice until the next load.)
 */
static __always_inline void follow_clock(struct task_ctx *tctx, s32 cpu, struct vcpufreq_sched_cpu *slot)
{
	struct vcpufreq_sched_cpu *old;
	u64 from, to = slot->vtime_now;

	if (tctx->vtime_cpu == cpu)
		return;
	if (tctx->vtime_cpu < 0 || !(old = cpu_slot(tctx->vtime_cpu))) {
		tctx->vtime = to;
	} else {
		from = old->vtime_now;
		if (tctx->vtime >= from)
			tctx->vtime = to + (tctx->vtime - from);
		else
			tctx->vtime = to > from - tctx->vtime ? to - (from - tctx->vtime) : 0;
	}
	tctx->vtime_cpu = cpu;
}

/*
 * Queues p on CPU cpu in vtime order. A waking task banks at most one slice
 * of credit; no task leads the clock by more than the lead bound, nor lags
 * it by more than that (what a task stolen back and forth could gather).
 */
static __always_inline void queue_on(struct task_struct *p, struct task_ctx *tctx, s32 cpu, u64 slice,
				     u64 enq_flags, bool hinted, const struct vcpufreq_sched_config *cfg)
{
	struct vcpufreq_sched_cpu *slot = cpu_slot(cpu);
	u64 base = slice_ns(cfg), clock, floor, ceiling;

	if (!slot) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice, enq_flags);
		return;
	}
	follow_clock(tctx, cpu, slot);
	clock = slot->vtime_now;
	floor = (enq_flags & SCX_ENQ_WAKEUP) ? base : VCPUFREQ_SCHED_MAX_LEAD_SLICES * base;
	floor = clock > floor ? clock - floor : 0;
	ceiling = clock + VCPUFREQ_SCHED_MAX_LEAD_SLICES * base;
	if (tctx->vtime < floor)
		tctx->vtime = floor;
	if (tctx->vtime > ceiling)
		tctx->vtime = ceiling;
	insert_vtime(p, VCPUFREQ_SCHED_CPU_DSQ(cpu), slice, tctx->vtime, enq_flags);
	if (hinted && tctx->queued_cpu < 0) {
		__sync_fetch_and_add(&slot->hinted_queued, 1);
		tctx->queued_cpu = cpu;
	}
}

/* p left its queue (it runs, sleeps or moves): no longer counted there. */
static __always_inline void unqueue(struct task_ctx *tctx)
{
	struct vcpufreq_sched_cpu *slot;

	if (tctx->queued_cpu < 0)
		return;
	slot = cpu_slot(tctx->queued_cpu);
	if (slot)
		__sync_fetch_and_add(&slot->hinted_queued, -1);
	tctx->queued_cpu = -1;
}

/* The slice of p's next run: a boosted thread's is its allowance's remainder. */
static __always_inline u64 run_slice(struct task_ctx *tctx, const struct vcpufreq_sched_config *cfg)
{
	u64 slice = slice_ns(cfg);

	if (tctx && tctx->boost_left_ns && tctx->boost_left_ns < slice)
		return tctx->boost_left_ns;
	return slice;
}

/* ---- Boosts --------------------------------------------------------------- */

/* The allowance of one boost, ns. */
static __always_inline u64 boost_allowance(const struct vcpufreq_sched_config *cfg, const struct sched_hint *hint)
{
	u64 us = cfg->boost_us;

	if (!us)
		us = hint->slice_us ? hint->slice_us : cfg->default_boost_us;
	if (!us)
		us = VCPUFREQ_SCHED_DEFAULT_BOOST_US;
	return us * NSEC_PER_USEC;
}

/* At a wake-up of a latency-flagged thread: grant a boost from its credit. */
static __always_inline void start_boost(struct task_ctx *tctx, const struct vcpufreq_sched_config *cfg,
					const struct sched_hint *hint)
{
	u64 allowance = boost_allowance(cfg, hint);
	u64 cap = 2 * allowance, now = scx_bpf_now();
	u64 share = cfg->boost_share_permille;

	if (!tctx->credit_at) {
		tctx->credit_ns = cap;
	} else if (now > tctx->credit_at) {
		tctx->credit_ns += (now - tctx->credit_at) * share / 1000;
		if (tctx->credit_ns > cap)
			tctx->credit_ns = cap;
	}
	tctx->credit_at = now;
	if (tctx->credit_ns < allowance / 8) {
		tctx->boost_left_ns = 0;
		COUNT(boosts_denied);
		return;
	}
	tctx->boost_left_ns = allowance < tctx->credit_ns ? allowance : tctx->credit_ns;
	COUNT(boosts);
}

/*
 * A boosted wake-up with no idle CPU in its cluster: ahead of everything
 * queued on a CPU of the cluster, preempting what runs there unless that is
 * boosted too (then right after it).
 */
static __always_inline void enqueue_boosted(struct task_struct *p, struct task_ctx *tctx, struct bpf_cpumask *cpus,
					    u64 slice, u64 enq_flags)
{
	const struct cpumask *allowed = sched_task(p)->cpus_ptr;
	s32 cpu = scx_bpf_task_cpu(p);
	struct vcpufreq_sched_cpu *slot;

	if (cpu < 0 || !bpf_cpumask_test_cpu(cpu, (const struct cpumask *)cpus) || !bpf_cpumask_test_cpu(cpu, allowed))
		cpu = bpf_cpumask_any_and_distribute((const struct cpumask *)cpus, allowed);
	slot = cpu_slot(cpu);
	if (!slot || cpu >= (s32)scx_bpf_nr_cpu_ids()) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice, enq_flags);
		return;
	}
	if (!slot->running_boosted) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | (u64)cpu, slice, enq_flags | SCX_ENQ_PREEMPT);
		COUNT(boost_preemptions);
	} else {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | (u64)cpu, slice, enq_flags | SCX_ENQ_HEAD);
		scx_bpf_kick_cpu(cpu, 0);
	}
}

/* ---- Operations ----------------------------------------------------------- */

SEC("struct_ops/vcpufreq_select_cpu")
s32 BPF_PROG(vcpufreq_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct vcpufreq_sched_config *cfg = config();
	struct bpf_cpumask *cpus;
	struct sched_hint hint;
	bool is_idle = false;
	s32 rank, cpu;

	if (read_hint(p, &hint) && (rank = choose_cluster(p, &hint)) >= 0 && (cpus = cluster_cpus(rank))) {
		cpu = idle_cpu_in(p, cpus, prev_cpu, wake_flags);
		if (cpu >= 0) {
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns(cfg), 0);
			COUNT(placed_idle);
			return cpu;
		}
		COUNT(placed_busy);
		if (bpf_cpumask_test_cpu(prev_cpu, (const struct cpumask *)cpus))
			return prev_cpu;
		cpu = bpf_cpumask_any_and_distribute((const struct cpumask *)cpus, sched_task(p)->cpus_ptr);
		return cpu < (s32)scx_bpf_nr_cpu_ids() ? cpu : prev_cpu;
	}
	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	if (is_idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns(cfg), 0);
	return cpu;
}

SEC("struct_ops/vcpufreq_enqueue")
void BPF_PROG(vcpufreq_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct vcpufreq_sched_config *cfg = config();
	struct task_ctx *tctx = task_ctx(p);
	struct bpf_cpumask *cpus;
	struct sched_hint hint;
	bool is_idle = false;
	s32 rank, cpu;
	u64 slice;

	if (!tctx) {
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice_ns(cfg), enq_flags);
		return;
	}
	slice = run_slice(tctx, cfg);
	cpu = scx_bpf_task_cpu(p);
	if (read_hint(p, &hint) && (rank = choose_cluster(p, &hint)) >= 0 && (cpus = cluster_cpus(rank))) {
		s32 idle = idle_cpu_in(p, cpus, cpu, 0);

		if (idle >= 0) {
			scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | (u64)idle, slice, enq_flags);
			scx_bpf_kick_cpu(idle, SCX_KICK_IDLE);
			COUNT(placed_idle);
			return;
		}
		if (tctx->boost_left_ns) {
			enqueue_boosted(p, tctx, cpus, slice, enq_flags);
			return;
		}
		if (!bpf_cpumask_test_cpu(cpu, (const struct cpumask *)cpus)
		    || !bpf_cpumask_test_cpu(cpu, sched_task(p)->cpus_ptr))
			cpu = bpf_cpumask_any_and_distribute((const struct cpumask *)cpus, sched_task(p)->cpus_ptr);
		queue_on(p, tctx, cpu, slice, enq_flags, true, cfg);
		COUNT(enqueued_hinted);
		return;
	}
	queue_on(p, tctx, cpu, slice, enq_flags, false, cfg);
	COUNT(enqueued_fair);
	/* An idle CPU it may use takes it from this CPU's queue (dispatch steals). */
	cpu = scx_bpf_select_cpu_dfl(p, cpu, 0, &is_idle);
	if (is_idle)
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
}

/* What the steal loop of ops.dispatch() needs. */
struct steal_ctx {
	s32 cpu;
	u32 cluster;
	u32 nr_cpus;
	bool done;
};

/* One candidate victim: CPU (cpu + 1 + index) mod nr_cpus. */
static long steal_one(u64 index, void *data)
{
	struct steal_ctx *ctx = data;
	s32 victim = (s32)((ctx->cpu + 1 + (u32)index) % (ctx->nr_cpus ? ctx->nr_cpus : 1));
	struct vcpufreq_sched_cpu *slot;

	if (victim == ctx->cpu)
		return 0;
	slot = cpu_slot(victim);
	if (!slot || scx_bpf_dsq_nr_queued(VCPUFREQ_SCHED_CPU_DSQ(victim)) <= 0)
		return 0;
	/* Hinted threads stay in their cluster. */
	if (slot->cluster != ctx->cluster && slot->hinted_queued)
		return 0;
	if (scx_bpf_dsq_move_to_local(VCPUFREQ_SCHED_CPU_DSQ(victim))) {
		ctx->done = true;
		return 1;
	}
	return 0;
}

SEC("struct_ops/vcpufreq_dispatch")
void BPF_PROG(vcpufreq_dispatch, s32 cpu, struct task_struct *prev)
{
	struct vcpufreq_sched_config *cfg = config();
	struct vcpufreq_sched_cpu *slot = cpu_slot(cpu);
	struct steal_ctx steal = { .cpu = cpu, .done = false };

	if (scx_bpf_dsq_move_to_local(VCPUFREQ_SCHED_CPU_DSQ(cpu))) {
		COUNT(dispatched_own);
		return;
	}
	if (!cfg || !slot)
		return;
	steal.cluster = slot->cluster;
	steal.nr_cpus = cfg->nr_cpus > VCPUFREQ_SCHED_MAX_CPUS ? VCPUFREQ_SCHED_MAX_CPUS : cfg->nr_cpus;
	bpf_loop(steal.nr_cpus, steal_one, &steal, 0);
	if (steal.done)
		COUNT(dispatched_stolen);
}

SEC("struct_ops/vcpufreq_runnable")
void BPF_PROG(vcpufreq_runnable, struct task_struct *p, u64 enq_flags)
{
	struct vcpufreq_sched_config *cfg = config();
	struct task_ctx *tctx = task_ctx(p);
	struct vcpufreq_sched_cpu *slot;
	struct sched_hint hint;
	s32 cpu;

	if (!tctx || !cfg || !read_hint(p, &hint))
		return;
	if ((enq_flags & SCX_ENQ_WAKEUP) && (hint.flags & (VCPUFREQ_HINT_LATENCY_SENSITIVE | VCPUFREQ_HINT_BOOST)))
		start_boost(tctx, cfg, &hint);
	/* Additive demand: this thread's util_min on the CPU it is runnable on. */
	if (tctx->util_cpu >= 0)
		return;
	cpu = scx_bpf_task_cpu(p);
	slot = cpu_slot(cpu);
	if (!slot)
		return;
	__sync_fetch_and_add(&slot->util_sum, (s64)hint.util_min);
	__sync_fetch_and_add(&slot->hinted_runnable, 1);
	tctx->util_cpu = cpu;
	tctx->util_added = hint.util_min;
}

/* Takes p's util_min off the CPU it was added to. */
static __always_inline void drop_util(struct task_ctx *tctx)
{
	struct vcpufreq_sched_cpu *slot;

	if (tctx->util_cpu < 0)
		return;
	slot = cpu_slot(tctx->util_cpu);
	if (slot) {
		__sync_fetch_and_add(&slot->util_sum, -(s64)tctx->util_added);
		__sync_fetch_and_add(&slot->hinted_runnable, -1);
	}
	tctx->util_cpu = -1;
	tctx->util_added = 0;
}

SEC("struct_ops/vcpufreq_running")
void BPF_PROG(vcpufreq_running, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);
	struct vcpufreq_sched_cpu *slot;
	struct sched_hint hint;

	if (!tctx)
		return;
	tctx->started_at = scx_bpf_now();
	unqueue(tctx);
	slot = cpu_slot(scx_bpf_task_cpu(p));
	if (slot) {
		/* Stolen, or sent straight to this CPU: onto its clock. */
		follow_clock(tctx, scx_bpf_task_cpu(p), slot);
		if (tctx->vtime > slot->vtime_now)
			slot->vtime_now = tctx->vtime;
	}
	tctx->hinted_run = read_hint(p, &hint);
	tctx->boosted_run = tctx->boost_left_ns != 0;
	if (tctx->boosted_run) {
		/* A boost lasts its allowance, whatever slice it was queued with. */
		scx_bpf_task_set_slice(p, tctx->boost_left_ns);
		if (slot)
			slot->running_boosted = 1;
	}
}

SEC("struct_ops/vcpufreq_stopping")
void BPF_PROG(vcpufreq_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = task_ctx(p);
	struct vcpufreq_sched_counters *c;
	struct vcpufreq_sched_cpu *slot;
	u64 now = scx_bpf_now(), ran;
	u32 weight;

	if (!tctx || !tctx->started_at)
		return;
	ran = now > tctx->started_at ? now - tctx->started_at : 0;
	tctx->started_at = 0;
	weight = sched_task(p)->scx.weight;
	tctx->vtime += ran * 100 / (weight ? weight : 100);
	slot = cpu_slot(scx_bpf_task_cpu(p));
	if (slot && tctx->hinted_run)
		__sync_fetch_and_add(&slot->hinted_runtime_ns, ran);
	if (!tctx->boosted_run)
		return;
	tctx->boosted_run = 0;
	if (slot) {
		slot->running_boosted = 0;
		__sync_fetch_and_add(&slot->boosted_runtime_ns, ran);
	}
	c = stats();
	if (c)
		c->boosted_runtime_ns += ran;
	tctx->credit_ns = tctx->credit_ns > ran ? tctx->credit_ns - ran : 0;
	if (ran >= tctx->boost_left_ns) {
		tctx->boost_left_ns = 0;
		if (c)
			c->boosts_expired++;
	} else {
		tctx->boost_left_ns -= ran;
	}
}

SEC("struct_ops/vcpufreq_quiescent")
void BPF_PROG(vcpufreq_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = task_ctx(p);

	if (!tctx)
		return;
	drop_util(tctx);
	unqueue(tctx);
	/* Asleep: the boost served its wake-up. The next one starts another. */
	if (deq_flags & SCX_DEQ_SLEEP)
		tctx->boost_left_ns = 0;
}

SEC("struct_ops/vcpufreq_init_task")
s32 BPF_PROG(vcpufreq_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	struct task_ctx *tctx = bpf_task_storage_get(&task_ctxs, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (!tctx)
		return -12; /* -ENOMEM */
	tctx->util_cpu = -1;
	tctx->vtime_cpu = -1;
	tctx->queued_cpu = -1;
	return 0;
}

SEC("struct_ops/vcpufreq_exit_task")
void BPF_PROG(vcpufreq_exit_task, struct task_struct *p, struct scx_exit_task_args *args)
{
	struct task_ctx *tctx = task_ctx(p);

	if (tctx) {
		drop_util(tctx);
		unqueue(tctx);
	}
}

SEC("struct_ops/vcpufreq_enable")
void BPF_PROG(vcpufreq_enable, struct task_struct *p)
{
	struct task_ctx *tctx = task_ctx(p);

	/* It starts at the clock of the first CPU it queues on. */
	if (tctx)
		tctx->vtime_cpu = -1;
}

/* Sleepable (the loader sets BPF_F_SLEEPABLE: scx_bpf_create_dsq may sleep). */
SEC("struct_ops/vcpufreq_init")
s32 BPF_PROG(vcpufreq_init)
{
	struct vcpufreq_sched_config *cfg = config();
	struct vcpufreq_sched_cluster *cluster;
	struct bpf_cpumask *mask, *old;
	struct cluster_mask *slot;
	__u32 rank, count, cpu;
	s32 err;

	if (!cfg || cfg->cluster_count == 0 || cfg->cluster_count > VCPUFREQ_SCHED_MAX_CLUSTERS)
		return -22; /* -EINVAL: the loader did not describe the clusters */
	count = cfg->cluster_count;
	for (cpu = 0; cpu < VCPUFREQ_SCHED_MAX_CPUS; cpu++) {
		if (cpu >= cfg->nr_cpus)
			break;
		err = scx_bpf_create_dsq(VCPUFREQ_SCHED_CPU_DSQ(cpu), NUMA_NO_NODE);
		if (err)
			return err;
	}
	for (rank = 0; rank < VCPUFREQ_SCHED_MAX_CLUSTERS; rank++) {
		__u32 key = rank;

		if (rank >= count)
			break;
		cluster = bpf_map_lookup_elem(&clusters, &key);
		slot = bpf_map_lookup_elem(&cluster_masks, &key);
		if (!cluster || !slot)
			return -22;
		mask = bpf_cpumask_create();
		if (!mask)
			return -12;
		err = bpf_cpumask_populate(mask, cluster->cpus, sizeof(cluster->cpus));
		if (err) {
			bpf_cpumask_release(mask);
			return err; /* -EACCES: more possible CPUs than VCPUFREQ_SCHED_MAX_CPUS */
		}
		old = bpf_kptr_xchg(&slot->mask, mask);
		if (old)
			bpf_cpumask_release(old);
	}
	return 0;
}

SEC("struct_ops/vcpufreq_exit")
void BPF_PROG(vcpufreq_exit, struct scx_exit_info *info)
{
	__u32 key = ZERO_KEY;
	struct vcpufreq_sched_exit *record = bpf_map_lookup_elem(&exit_info, &key);
	__u64 kind;

	if (record) {
		record->exit_code = info->exit_code;
		record->exit_cpu = info->exit_cpu;
		bpf_probe_read_kernel_str(record->reason, sizeof(record->reason), info->reason);
		bpf_probe_read_kernel_str(record->msg, sizeof(record->msg), info->msg);
		/* Last: user space reads the record once kind is set. */
		record->kind = info->kind;
	}
	kind = (__u64)info->kind;
	bpf_ringbuf_output(&exit_events, &kind, sizeof(kind), 0);
}

SEC(".struct_ops")
struct sched_ext_ops vcpufreq_ops = {
	.select_cpu = (void *)vcpufreq_select_cpu,
	.enqueue = (void *)vcpufreq_enqueue,
	.dispatch = (void *)vcpufreq_dispatch,
	.runnable = (void *)vcpufreq_runnable,
	.running = (void *)vcpufreq_running,
	.stopping = (void *)vcpufreq_stopping,
	.quiescent = (void *)vcpufreq_quiescent,
	.init_task = (void *)vcpufreq_init_task,
	.exit_task = (void *)vcpufreq_exit_task,
	.enable = (void *)vcpufreq_enable,
	.init = (void *)vcpufreq_init,
	.exit = (void *)vcpufreq_exit,
	.flags = 0,
	.timeout_ms = VCPUFREQ_SCHED_TIMEOUT_MS,
	.name = "vcpufreq",
};
