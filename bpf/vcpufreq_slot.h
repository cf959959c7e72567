/*
 * vcpufreq_slot.h: a vCPU thread's shared-page slot, read and written in
 * place by host BPF programs — the tracepoint programs of vcpufreq.bpf.c and
 * any scheduler (sched_ext) that wants the guest's requests at the moment it
 * decides, with no exit, no syscall and no daemon wake-up.
 *
 * The shared page of a VM the daemon gave a BPF-map page (docs/protocol.md,
 * SHARED_OK page_kind 1) is an mmapable BPF array map the VMM maps as guest
 * memory: the guest's stores land in the map's memory. The daemon keeps:
 *   vm_pages     ARRAY_OF_MAPS, key vm_index: each VM's page map (an ARRAY
 *                of 4096-byte values, BPF_F_MMAPABLE | BPF_F_INNER_MAP,
 *                one per 4 KiB page of the region);
 *   vm_caps      ARRAY, key vm_index: struct vcpufreq_vm_caps;
 *   vcpu_threads HASH, key TID: struct vcpufreq_vcpu_ref (vm_index, vCPU);
 *   cpu_info     ARRAY, key host CPU: struct vcpufreq_cpu_info.
 * All four are pinned in the daemon's pin directory (default
 * /sys/fs/bpf/vcpufreq) under these names.
 *
 * Include after the kernel types (vcpufreq_kernel.h, or a vmlinux.h) and
 * <bpf/bpf_helpers.h>; the include path needs bpf/ and
 * Sources/CVCPUFreqABI/include (vcpufreq_abi.h: the slot layout). This header
 * defines the four maps unless VCPUFREQ_SLOT_NO_MAPS is defined: another
 * object reuses the daemon's by pin path before load, e.g.
 *   bpf_map__set_pin_path(bpf_object__find_map_by_name(obj, "vm_pages"),
 *                         "/sys/fs/bpf/vcpufreq/vm_pages");
 * (libbpf then checks the pinned map's type and sizes and uses it).
 *
 * What the guest writes is untrusted input: vcpufreq_read_request() reads it
 * with the slot's seqlock (sequence, fields, sequence again; a torn or busy
 * read is refused, never used) and cuts every value to the VM's caps before
 * anything can act on it. The two host words BPF writes (sched_seen,
 * sched_placement; docs/abi.md "Host words written by BPF") are each stored
 * whole, outside the daemon's host seqlock: programs on several CPUs may
 * write them at once and a reader needs no lock.
 */
#ifndef VCPUFREQ_SLOT_H
#define VCPUFREQ_SLOT_H

#include "vcpufreq_abi.h"
#include "vcpufreq_bpf.h"

#ifndef VCPUFREQ_SLOT_NO_MAPS
/* The template of every VM's page map (the daemon creates the real ones:
 * max_entries is the VM's page count, which BPF_F_INNER_MAP lets differ). */
struct vcpufreq_page_map {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE | BPF_F_INNER_MAP);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u8[VCPUFREQ_PAGE_SIZE]);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, VCPUFREQ_MAX_PAGE_VMS);
	__type(key, __u32);
	__array(values, struct vcpufreq_page_map);
} vm_pages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VCPUFREQ_MAX_PAGE_VMS);
	__type(key, __u32);
	__type(value, struct vcpufreq_vm_caps);
} vm_caps SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VCPUFREQ_MAX_TRACKED_THREADS);
	__type(key, __u32);
	__type(value, struct vcpufreq_vcpu_ref);
} vcpu_threads SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, VCPUFREQ_MAX_CPUS);
	__type(key, __u32);
	__type(value, struct vcpufreq_cpu_info);
} cpu_info SEC(".maps");
#endif /* VCPUFREQ_SLOT_NO_MAPS */

/* A vCPU thread's slot and its VM's caps. */
struct vcpufreq_slot_ref {
	struct vcpufreq_slot *slot; /* in the VM's page: the guest may write its half at any moment */
	struct vcpufreq_vm_caps *caps;
	__u32 vm_index;
	__u32 vcpu;
};

/* Finds the slot of thread `tid`; false when it is no vCPU thread with a
 * BPF-map page (or its VM is being detached). The vm_id check refuses a
 * reference left over from a VM whose index was reused. */
static __always_inline bool vcpufreq_slot_of_task(__u32 tid, struct vcpufreq_slot_ref *ref)
{
	struct vcpufreq_vcpu_ref *thread;
	struct vcpufreq_vm_caps *caps;
	void *pages;
	__u8 *page;
	__u32 vm, vcpu, id, offset, index;

	thread = bpf_map_lookup_elem(&vcpu_threads, &tid);
	if (!thread)
		return false;
	vm = thread->vm_index;
	vcpu = thread->vcpu;
	id = thread->vm_id;
	caps = bpf_map_lookup_elem(&vm_caps, &vm);
	if (!caps || id == 0 || caps->vm_id != id || vcpu >= caps->vcpu_count || vcpu >= VCPUFREQ_MAX_VCPUS)
		return false;
	pages = bpf_map_lookup_elem(&vm_pages, &vm);
	if (!pages)
		return false;
	offset = VCPUFREQ_SP_HEADER_SIZE + vcpu * VCPUFREQ_SP_SLOT_SIZE;
	index = offset / VCPUFREQ_PAGE_SIZE;
	page = bpf_map_lookup_elem(pages, &index);
	if (!page)
		return false;
	/* A multiple of the slot size within the page: slots never straddle pages. */
	offset &= VCPUFREQ_PAGE_SIZE - VCPUFREQ_SP_SLOT_SIZE;
	ref->slot = (struct vcpufreq_slot *)(page + offset);
	ref->caps = caps;
	ref->vm_index = vm;
	ref->vcpu = vcpu;
	return true;
}

/* A fully ordered load of a guest word: an atomic fetch-or of 0 (it stores
 * back, atomically, the value it read, so the word never changes). The
 * seqlock needs the field loads kept between its two sequence loads, which
 * plain BPF loads do not promise on weakly ordered CPUs; this does. */
static __always_inline __u32 vcpufreq_ordered_load(__u32 *word)
{
	return __sync_fetch_and_or(word, 0);
}

static __always_inline __u32 vcpufreq_load(const __u32 *word)
{
	return *(const volatile __u32 *)word;
}

/* One guest request as a program may act on it: after bounds and caps. */
struct vcpufreq_request {
	__u32 sequence;    /* the guest sequence of this consistent read (even, not 0) */
	__u32 flags;       /* VCPUFREQ_GUEST_F_* honoured: util/perf valid, latency, boost */
	__u32 utilization; /* 0..caps->util_cap (with VCPUFREQ_GUEST_F_UTIL_VALID) */
	__u32 perf_khz;    /* 1..caps->max_perf_khz (with VCPUFREQ_GUEST_F_PERF_VALID) */
	__u32 boost_util;  /* what a granted boost lifts the utilization to (with VCPUFREQ_GUEST_F_BOOST) */
	bool capped;       /* a value was above the VM's cap */
	bool rejected;     /* unknown flags, utilization > 1024 or perf 0 */
};

enum vcpufreq_read_result {
	VCPUFREQ_READ_OK = 0,
	VCPUFREQ_READ_NEVER_PUBLISHED = 1, /* sequence 0 */
	VCPUFREQ_READ_BUSY = 2,            /* odd, or changed during the read: try at the next event */
};

/* Reads the guest half of `ref`'s slot with the seqlock protocol of
 * docs/abi.md and validates it as the daemon does (same faults), then cuts
 * it to the VM's caps. Nothing in `out` is beyond what the operator allows. */
static __always_inline enum vcpufreq_read_result vcpufreq_read_request(const struct vcpufreq_slot_ref *ref,
								       struct vcpufreq_request *out)
{
	struct vcpufreq_slot *slot = ref->slot;
	const struct vcpufreq_vm_caps *caps = ref->caps;
	__u32 sequence, flags, utilization, perf, features, cap, max_perf, boost;

	sequence = vcpufreq_ordered_load(&slot->sequence);
	if (sequence == 0)
		return VCPUFREQ_READ_NEVER_PUBLISHED;
	if (sequence & 1)
		return VCPUFREQ_READ_BUSY;
	flags = vcpufreq_load(&slot->flags);
	utilization = vcpufreq_load(&slot->utilization);
	perf = vcpufreq_load(&slot->perf_khz);
	if (vcpufreq_ordered_load(&slot->sequence) != sequence)
		return VCPUFREQ_READ_BUSY;

	/* The caps are the daemon's (a map value userspace may rewrite): copied once. */
	features = vcpufreq_load(&caps->features);
	cap = vcpufreq_load(&caps->util_cap);
	max_perf = vcpufreq_load(&caps->max_perf_khz);
	boost = vcpufreq_load(&caps->boost_util);
	if (cap > VCPUFREQ_UTIL_MAX)
		cap = VCPUFREQ_UTIL_MAX;
	if (boost > cap)
		boost = cap;

	out->sequence = sequence;
	out->flags = 0;
	out->utilization = 0;
	out->perf_khz = 0;
	out->boost_util = 0;
	out->capped = false;
	out->rejected = (flags & ~VCPUFREQ_GUEST_F_KNOWN) != 0;
	if ((flags & VCPUFREQ_GUEST_F_UTIL_VALID) && (features & VCPUFREQ_FEATURE_UTILIZATION)) {
		if (utilization > VCPUFREQ_UTIL_MAX) {
			out->rejected = true;
			utilization = VCPUFREQ_UTIL_MAX;
		}
		if (utilization > cap) {
			out->capped = true;
			utilization = cap;
		}
		out->utilization = utilization;
		out->flags |= VCPUFREQ_GUEST_F_UTIL_VALID;
	}
	if ((flags & VCPUFREQ_GUEST_F_PERF_VALID) && (features & VCPUFREQ_FEATURE_PERFORMANCE)) {
		if (perf == 0) {
			out->rejected = true;
		} else {
			if (perf > max_perf) {
				out->rejected = true;
				perf = max_perf;
			}
			out->perf_khz = perf;
			out->flags |= VCPUFREQ_GUEST_F_PERF_VALID;
		}
	}
	if ((flags & VCPUFREQ_GUEST_F_LATENCY_SENSITIVE) && (features & VCPUFREQ_FEATURE_LATENCY_HINT))
		out->flags |= VCPUFREQ_GUEST_F_LATENCY_SENSITIVE;
	if ((flags & VCPUFREQ_GUEST_F_BOOST) && (features & VCPUFREQ_FEATURE_BOOST) && boost > 0) {
		out->flags |= VCPUFREQ_GUEST_F_BOOST;
		out->boost_util = boost;
	}
	return VCPUFREQ_READ_OK;
}

/* The sched_seen word for a request read (VCPUFREQ_SEEN_*). */
static __always_inline __u32 vcpufreq_seen_word(const struct vcpufreq_request *r)
{
	__u32 word = r->sequence & VCPUFREQ_SEEN_SEQUENCE_MASK;

	if (r->flags & VCPUFREQ_GUEST_F_UTIL_VALID)
		word |= VCPUFREQ_SEEN_UTIL_VALID | ((r->utilization << VCPUFREQ_SEEN_UTIL_SHIFT) & VCPUFREQ_SEEN_UTIL_MASK);
	if (r->flags & VCPUFREQ_GUEST_F_LATENCY_SENSITIVE)
		word |= VCPUFREQ_SEEN_LATENCY;
	if (r->flags & VCPUFREQ_GUEST_F_BOOST)
		word |= VCPUFREQ_SEEN_BOOST;
	if (r->capped)
		word |= VCPUFREQ_SEEN_CAPPED;
	if (r->rejected)
		word |= VCPUFREQ_SEEN_REJECTED;
	return word;
}

/* floor(log2(v)), 0 for v <= 1; branch-free so the verifier sees no loop. */
static __always_inline __u32 vcpufreq_log2(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xFFFFFFFFULL) << 5; v >>= r;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (__u32)(v >> 1);
	return r;
}

/* The run-delay histogram bucket of a wait: log2 of microseconds, 0..31. */
static __always_inline __u32 vcpufreq_delay_bucket(__u64 delay_ns)
{
	__u32 bucket = vcpufreq_log2(delay_ns / 1000);

	return bucket >= VCPUFREQ_DELAY_BUCKETS ? VCPUFREQ_DELAY_BUCKETS - 1 : bucket;
}

/* The sched_placement word: `cpu`, its capacity and cluster from cpu_info,
 * and the run-delay bucket `delay_bucket` (VCPUFREQ_DELAY_BUCKETS or more:
 * keep the one in `previous`). */
static __always_inline __u32 vcpufreq_placement_word(__u32 cpu, __u32 delay_bucket, __u32 previous)
{
	struct vcpufreq_cpu_info *info = bpf_map_lookup_elem(&cpu_info, &cpu);
	__u32 capacity = 0, cluster = VCPUFREQ_PLACE_CLUSTER_UNKNOWN, word;

	if (info && info->known) {
		capacity = info->capacity > VCPUFREQ_UTIL_MAX ? VCPUFREQ_UTIL_MAX : info->capacity;
		cluster = info->cluster < VCPUFREQ_PLACE_CLUSTER_UNKNOWN ? info->cluster : VCPUFREQ_PLACE_CLUSTER_UNKNOWN;
	}
	word = cpu + 1 < VCPUFREQ_PLACE_CPU_MASK ? cpu + 1 : VCPUFREQ_PLACE_CPU_MASK;
	word |= capacity << VCPUFREQ_PLACE_CAPACITY_SHIFT;
	word |= cluster << VCPUFREQ_PLACE_CLUSTER_SHIFT;
	if (delay_bucket < VCPUFREQ_DELAY_BUCKETS)
		word |= delay_bucket << VCPUFREQ_PLACE_DELAY_SHIFT;
	else
		word |= previous & VCPUFREQ_PLACE_DELAY_MASK;
	return word;
}

/* Stores a host word only when it changes: the slot's cache line is the
 * guest's too, and most events change nothing. */
static __always_inline void vcpufreq_store_word(__u32 *word, __u32 value)
{
	if (*(volatile __u32 *)word != value)
		*(volatile __u32 *)word = value;
}

/* Writes where `ref`'s vCPU runs now (see vcpufreq_placement_word). */
static __always_inline void vcpufreq_note_placement(const struct vcpufreq_slot_ref *ref, __u32 cpu, __u32 delay_bucket)
{
	__u32 previous = vcpufreq_load(&ref->slot->sched_placement);

	vcpufreq_store_word(&ref->slot->sched_placement, vcpufreq_placement_word(cpu, delay_bucket, previous));
}

#endif /* VCPUFREQ_SLOT_H */
