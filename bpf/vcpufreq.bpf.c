// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * vcpufreq.bpf.c: host-side truth about vCPU threads.
 *
 * Scheduler tracepoints (tp_btf, no tracefs needed) account, per tracked
 * thread: time on CPU, wake-ups, the delay from becoming runnable (woken, or
 * preempted while still runnable) to running again, voluntary and involuntary
 * switches, migrations and the last CPU. KVM tracepoints (tracepoint/kvm/...,
 * need tracefs) count exits by kind for the thread that ran KVM_RUN.
 *
 * Time on CPU and run delays are read from the kernel's own per-task
 * accounting (se.sum_exec_runtime, sched_info.run_delay; CO-RE) at each
 * switch-out, not timed from switch-in to switch-out: sched_switch does not
 * report every switch-in (on the development VMs, switches away from some
 * tasks are never traced), and timing lost whole runs. Switch-outs are
 * reported reliably, and each one closes exactly one run and the wait before it.
 *
 * What the development VMs hide: the programs do not run for events on a CPU
 * whose current task is the sandbox's own agent (its tokio-rt-worker
 * threads), not even for those raised in an interrupt. A tracked thread's
 * switch-in from the agent is not seen, and neither is a wake-up raised
 * there, e.g. by a timer interrupt that ends a sleep while the agent runs
 * on that CPU (tracefs still shows those wake-ups). A tracked thread's own
 * switch-outs run in its own context and are always seen.
 *
 * A thread is tracked while map "threads" has an entry for its TID; every
 * event first looks the TID up there, so an untracked thread costs one hash
 * lookup. Map "util_hint" is written by the daemon only, for a host BPF
 * scheduler to read; no program here uses it, it lives in this object so one
 * load creates and pins it.
 *
 * A tracked vCPU thread whose VM got a BPF-map shared page (vcpufreq_slot.h)
 * also has its guest's request read in place at each of its switches,
 * wake-ups and sched_stat_runtime events (the scheduler's accounting, at
 * every tick while it runs): counted in its "guest" samples and acknowledged
 * in the slot's sched_seen word; its switches and migrations write where it
 * runs into sched_placement.
 *
 * Layouts: vcpufreq_bpf.h and docs/bpf.md.
 */
#include "vcpufreq_kernel.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "vcpufreq_bpf.h"
#include "vcpufreq_slot.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VCPUFREQ_MAX_TRACKED_THREADS);
	__type(key, __u32);
	__type(value, struct vcpufreq_thread_stats);
} threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VCPUFREQ_MAX_UTIL_HINTS);
	__type(key, __u32);
	__type(value, struct vcpufreq_util_hint);
} util_hint SEC(".maps");

static __always_inline struct vcpufreq_thread_stats *tracked(__u32 tid)
{
	/* TID 0 is every CPU's idle task; userspace never tracks it. */
	return bpf_map_lookup_elem(&threads, &tid);
}

/* Returns the delay's bucket (vcpufreq_delay_bucket). */
static __always_inline __u32 record_delay(struct vcpufreq_thread_stats *s, __u64 delay_ns)
{
	__u32 bucket = vcpufreq_delay_bucket(delay_ns);

	__sync_fetch_and_add(&s->delay_hist[bucket], 1);
	__sync_fetch_and_add(&s->delay_sum_ns, delay_ns);
	__sync_fetch_and_add(&s->delay_count, 1);
	return bucket;
}

/* Reads the guest's request of vCPU thread `tid` (tracked as `s`) in place,
 * counts it and acknowledges it in the slot's sched_seen word. Returns
 * whether the thread has a slot; `ref` is it then. */
static __always_inline bool sample_guest(struct vcpufreq_thread_stats *s, __u32 tid, struct vcpufreq_slot_ref *ref)
{
	struct vcpufreq_guest_samples *g = &s->guest;
	struct vcpufreq_request r;

	if (!vcpufreq_slot_of_task(tid, ref))
		return false;
	switch (vcpufreq_read_request(ref, &r)) {
	case VCPUFREQ_READ_OK:
		break;
	case VCPUFREQ_READ_BUSY:
		__sync_fetch_and_add(&g->busy, 1);
		return true;
	default:
		return true;
	}
	__sync_fetch_and_add(&g->reads, 1);
	if (r.sequence != g->last_sequence)
		__sync_fetch_and_add(&g->new_requests, 1);
	if (r.capped)
		__sync_fetch_and_add(&g->capped, 1);
	if (r.rejected)
		__sync_fetch_and_add(&g->rejected, 1);
	if (r.flags & VCPUFREQ_GUEST_F_UTIL_VALID) {
		__sync_fetch_and_add(&g->util_reads, 1);
		__sync_fetch_and_add(&g->util_sum, r.utilization);
	}
	if (r.flags & VCPUFREQ_GUEST_F_LATENCY_SENSITIVE)
		__sync_fetch_and_add(&g->latency_reads, 1);
	if (r.flags & VCPUFREQ_GUEST_F_BOOST)
		__sync_fetch_and_add(&g->boost_reads, 1);
	g->last_sequence = r.sequence;
	g->last_flags = r.flags;
	g->last_utilization = r.utilization;
	g->last_perf_khz = r.perf_khz;
	g->last_read_ns = bpf_ktime_get_ns();
	vcpufreq_store_word(&ref->slot->sched_seen, vcpufreq_seen_word(&r));
	return true;
}

/* Whether this kernel keeps sched_info (CONFIG_SCHED_INFO); resolved at load. */
#define HAS_SCHED_INFO(p) bpf_core_field_exists((p)->sched_info.run_delay)

/* The bases runtime and run delay count from, set the first time the
 * programs see the thread. Seen woken or switching in, it was not on CPU when
 * tracked: the kernel's totals are the bases. Seen first switching out, it was
 * on CPU since before tracking (or its switch-in was not reported): its
 * runtime counts from tracked_since_ns. */
static __always_inline void first_sight(struct vcpufreq_thread_stats *s, struct task_struct *p, __u64 now,
					bool switching_out)
{
	__u64 sum, since = 0;

	if (s->flags & VCPUFREQ_THREAD_SEEN)
		return;
	sum = p->se.sum_exec_runtime;
	if (switching_out && s->tracked_since_ns && now > s->tracked_since_ns)
		since = now - s->tracked_since_ns;
	s->exec_base_ns = sum > since ? sum - since : 0;
	if (HAS_SCHED_INFO(p))
		s->run_delay_base_ns = p->sched_info.run_delay;
	s->flags |= VCPUFREQ_THREAD_SEEN;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(on_sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next,
	     unsigned int prev_state)
{
	__u64 now = bpf_ktime_get_ns();
	__u32 cpu = bpf_get_smp_processor_id();
	struct vcpufreq_thread_stats *s;
	struct vcpufreq_slot_ref ref;

	s = tracked(prev->pid);
	if (s) {
		/* The kernel's own rule for nvcsw/nivcsw in __schedule(). */
		bool still_runnable = preempt || prev_state == TASK_RUNNING;
		__u64 sum = prev->se.sum_exec_runtime;
		__u32 bucket = VCPUFREQ_DELAY_BUCKETS; /* none measured */

		first_sight(s, prev, now, true);
		/* Only this CPU writes it now: the task is on no other. */
		if (sum > s->exec_base_ns)
			s->runtime_ns = sum - s->exec_base_ns;
		s->switched_in_ns = 0;
		/* Also here: its switch-in onto this CPU may not have been seen. */
		s->last_cpu = bpf_get_smp_processor_id();
		if (HAS_SCHED_INFO(prev)) {
			/* The wait before the run that ends here: run_delay grows at switch-in. */
			__u64 waited = prev->sched_info.run_delay;

			bucket = record_delay(s, waited > s->run_delay_base_ns ? waited - s->run_delay_base_ns : 0);
			s->run_delay_base_ns = waited;
		} else {
			s->runnable_since_ns = still_runnable ? now : 0;
		}
		if (still_runnable)
			__sync_fetch_and_add(&s->involuntary_switches, 1);
		else
			__sync_fetch_and_add(&s->voluntary_switches, 1);
		if (sample_guest(s, prev->pid, &ref))
			vcpufreq_note_placement(&ref, cpu, bucket);
	}

	s = tracked(next->pid);
	if (s) {
		__u32 bucket = VCPUFREQ_DELAY_BUCKETS; /* none measured */

		first_sight(s, next, now, false);
		if (!HAS_SCHED_INFO(next)) {
			__u64 since = s->runnable_since_ns;

			if (since && now > since)
				bucket = record_delay(s, now - since);
			s->runnable_since_ns = 0;
		}
		s->switched_in_ns = now;
		s->last_cpu = cpu;
		if (sample_guest(s, next->pid, &ref))
			vcpufreq_note_placement(&ref, cpu, bucket);
	}
	return 0;
}

static __always_inline int on_wakeup(struct task_struct *p)
{
	struct vcpufreq_thread_stats *s = tracked(p->pid);
	struct vcpufreq_slot_ref ref;

	if (!s)
		return 0;
	__sync_fetch_and_add(&s->wakeups, 1);
	sample_guest(s, p->pid, &ref);
	/* A thread tracked while blocked is first seen here, off CPU, where its
	 * runtime and run delay are final: the bases. Left to its switch-in,
	 * which may never be reported, its first switch-out would count all the
	 * time since tracking as runtime (blocked time included) and drop the
	 * wait before that run. (On CPU, it has not blocked since it was
	 * tracked: its next switch-out, always reported, is its first sight.) */
	if (!p->on_cpu)
		first_sight(s, p, 0, false);
	/* Without sched_info the wait is timed from here. A wake-up of a task
	 * still on CPU (it had not blocked yet) starts no wait, and one of a
	 * task already waiting (preempted) keeps its start. */
	if (!HAS_SCHED_INFO(p) && !p->on_cpu && !s->runnable_since_ns)
		s->runnable_since_ns = bpf_ktime_get_ns();
	return 0;
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(on_sched_wakeup, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(on_sched_wakeup_new, struct task_struct *p)
{
	return on_wakeup(p);
}

SEC("tp_btf/sched_migrate_task")
int BPF_PROG(on_sched_migrate_task, struct task_struct *p, int dest_cpu)
{
	struct vcpufreq_thread_stats *s = tracked(p->pid);
	struct vcpufreq_slot_ref ref;

	if (!s)
		return 0;
	/* set_task_cpu() fires this even when the CPU does not change. */
	if (bpf_core_field_exists(p->thread_info.cpu) && p->thread_info.cpu == (__u32)dest_cpu)
		return 0;
	__sync_fetch_and_add(&s->migrations, 1);
	/* Where it runs next: its guest sees the new CPU before it runs there. */
	if (vcpufreq_slot_of_task(p->pid, &ref))
		vcpufreq_note_placement(&ref, (__u32)dest_cpu, VCPUFREQ_DELAY_BUCKETS);
	return 0;
}

/* The scheduler's accounting of the running task (update_curr: every tick,
 * and at enqueues, dequeues and switches): a running vCPU's guest request is
 * read here at least once a tick, even while it never switches. */
SEC("tp_btf/sched_stat_runtime")
int BPF_PROG(on_sched_stat_runtime, struct task_struct *p)
{
	struct vcpufreq_thread_stats *s = tracked(p->pid);
	struct vcpufreq_slot_ref ref;

	if (s)
		sample_guest(s, p->pid, &ref);
	return 0;
}

static __always_inline struct vcpufreq_thread_stats *current_tracked(void)
{
	return tracked((__u32)bpf_get_current_pid_tgid());
}

SEC("tracepoint/kvm/kvm_exit")
int on_kvm_exit(void *ctx)
{
	struct vcpufreq_thread_stats *s = current_tracked();

	if (s)
		__sync_fetch_and_add(&s->exits.kvm_exit, 1);
	return 0;
}

SEC("tracepoint/kvm/kvm_userspace_exit")
int on_kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit *ctx)
{
	struct vcpufreq_thread_stats *s = current_tracked();
	__u32 reason;
	int err;

	if (!s)
		return 0;
	reason = ctx->reason;
	err = ctx->errno;
	if (err == -EINTR)
		__sync_fetch_and_add(&s->exits.userspace_exit_eintr, 1);
	else if (err < 0)
		__sync_fetch_and_add(&s->exits.userspace_exit_error, 1);
	else if (reason < VCPUFREQ_USERSPACE_EXIT_REASONS)
		__sync_fetch_and_add(&s->exits.userspace_exit[reason], 1);
	else
		__sync_fetch_and_add(&s->exits.userspace_exit_other, 1);
	return 0;
}

SEC("tracepoint/kvm/kvm_mmio")
int on_kvm_mmio(struct trace_event_raw_kvm_mmio *ctx)
{
	struct vcpufreq_thread_stats *s = current_tracked();

	if (!s)
		return 0;
	switch (ctx->type) {
	case 0: /* KVM_TRACE_MMIO_READ_UNSATISFIED */
		__sync_fetch_and_add(&s->exits.mmio_unsatisfied_read, 1);
		break;
	case 1: /* KVM_TRACE_MMIO_READ */
		__sync_fetch_and_add(&s->exits.mmio_read, 1);
		break;
	case 2: /* KVM_TRACE_MMIO_WRITE */
		__sync_fetch_and_add(&s->exits.mmio_write, 1);
		break;
	default: /* a type this kernel added later: not ours to guess */
		break;
	}
	return 0;
}

SEC("tracepoint/kvm/kvm_pio")
int on_kvm_pio(struct trace_event_raw_kvm_pio *ctx)
{
	struct vcpufreq_thread_stats *s = current_tracked();

	if (!s)
		return 0;
	if (ctx->rw)
		__sync_fetch_and_add(&s->exits.pio_out, 1);
	else
		__sync_fetch_and_add(&s->exits.pio_in, 1);
	return 0;
}
