/*
 * vcpufreq guest ABIs, for VMM and guest driver authors.
 *
 * Three ways for a guest to talk to the vcpufreq device, all in one device
 * address space per VM (offsets below are from the VM's base address):
 *
 *   1. the upstream Linux "qemu,virtual-cpufreq" windows (VCPUFREQ_UP_*),
 *   2. the util-hint windows (VCPUFREQ_UH_*),
 *   3. the shared page and its doorbells (VCPUFREQ_SP_*, VCPUFREQ_DOORBELL_*).
 *
 * docs/abi.md is the prose; this header is normative for the numbers and,
 * in vcpufreq_slot_publish() and vcpufreq_slot_read_host(), for the memory
 * ordering a guest must use. Every constant here is checked against the
 * host's Swift definitions by the project's tests.
 *
 * Plain C99 or C11, no packing: every field is a naturally aligned 32-bit
 * little-endian word.
 */
#ifndef VCPUFREQ_ABI_H
#define VCPUFREQ_ABI_H

#include <stddef.h>
#if defined(__bpf__)
/* Host BPF programs read the shared page with this header too
 * (bpf/vcpufreq_slot.h); the BPF target has no C library headers. */
typedef __UINT32_TYPE__ uint32_t;
#else
#include <stdint.h>
#endif

#if defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define VCPUFREQ_STATIC_ASSERT(cond, name) _Static_assert(cond, #name)
#else
#define VCPUFREQ_STATIC_ASSERT(cond, name) typedef char vcpufreq_static_assert_##name[(cond) ? 1 : -1]
#endif

/* ---- Device address map (offsets from the VM's base) ------------------- */

/* The upstream driver's customary base: cpufreq@1040000. */
#define VCPUFREQ_DEFAULT_BASE 0x1040000u
/* Span reserved for each per-vCPU register region: 1024 windows of 0x1000. */
#define VCPUFREQ_REGION_SPAN 0x400000u
#define VCPUFREQ_UPSTREAM_OFFSET 0x0u
#define VCPUFREQ_UTIL_HINT_OFFSET 0x400000u
#define VCPUFREQ_SHARED_PAGE_OFFSET 0x800000u
/* Doorbell of vCPU i at VCPUFREQ_DOORBELL_OFFSET + i * VCPUFREQ_DOORBELL_STRIDE. */
#define VCPUFREQ_DOORBELL_OFFSET 0x880000u
#define VCPUFREQ_DOORBELL_STRIDE 4u
/* Whole device space, doorbell page included. */
#define VCPUFREQ_TOTAL_SPAN 0x881000u
/* KVM's KVM_MAX_VCPUS: the most vCPUs one device serves. */
#define VCPUFREQ_MAX_VCPUS 1024u

/* ---- ABI 1: upstream virtual-cpufreq, compatible "qemu,virtual-cpufreq" - */

#define VCPUFREQ_UP_WINDOW_SIZE 0x1000u
#define VCPUFREQ_UP_REG_WIDTH 4u
/* R: current performance of this vCPU, kHz scale. */
#define VCPUFREQ_UP_REG_CUR_PERF 0x00u
/* W: requested performance, kHz scale. */
#define VCPUFREQ_UP_REG_SET_PERF 0x04u
/* R: table entries; 1 = no table, entry 0 is the max, any 1..max may be set. */
#define VCPUFREQ_UP_REG_PERFTBL_LEN 0x08u
/* W: index of the entry VCPUFREQ_UP_REG_PERFTBL_RD returns. */
#define VCPUFREQ_UP_REG_PERFTBL_SEL 0x0cu
/* R: table entry at perftbl_sel (0 when out of range). */
#define VCPUFREQ_UP_REG_PERFTBL_RD 0x10u
/* R: vCPUs with equal values share one cpufreq policy. */
#define VCPUFREQ_UP_REG_PERF_DOMAIN 0x14u
/* The driver refuses to probe when any CPU reports 0 or more entries. */
#define VCPUFREQ_UP_PERFTBL_MAX_ENTRIES 64u

/* ---- ABI 2: util-hint windows, compatible "vcpufreq,util-hint" ---------- */

#define VCPUFREQ_UH_WINDOW_SIZE 0x1000u
#define VCPUFREQ_UH_REG_WIDTH 4u
/* W: utilization 0..1024 (1024 = the host's fastest CPU at its top speed). */
#define VCPUFREQ_UH_REG_UTIL_HINT 0x00u
/* R: current performance of this vCPU, kHz. */
#define VCPUFREQ_UH_REG_CUR_FREQ 0x04u
/* R: entries in this vCPU's frequency table (1..64). */
#define VCPUFREQ_UH_REG_FREQTBL_LEN 0x08u
/* W: index of the entry VCPUFREQ_UH_REG_FREQTBL_RD returns. */
#define VCPUFREQ_UH_REG_FREQTBL_SEL 0x0cu
/* R: frequency table entry at freqtbl_sel, kHz (0 when out of range). */
#define VCPUFREQ_UH_REG_FREQTBL_RD 0x10u
/* R: capacity 0..1024 of the host cluster this vCPU models. */
#define VCPUFREQ_UH_REG_CAPACITY 0x14u
/* R: highest utilization the host grants this VM. */
#define VCPUFREQ_UH_REG_UTIL_CAP 0x18u
/* R: util_min currently applied to this vCPU's thread. */
#define VCPUFREQ_UH_REG_APPLIED_UTIL 0x1cu
#define VCPUFREQ_UTIL_MAX 1024u

/* ---- ABI 3: shared page ------------------------------------------------- */

/* "VCPF" in memory order. */
#define VCPUFREQ_SP_MAGIC 0x46504356u
#define VCPUFREQ_SP_VERSION 1u
#define VCPUFREQ_SP_HEADER_SIZE 64u
#define VCPUFREQ_SP_SLOT_SIZE 64u
/* Bytes of a region for n vCPUs: header + slots, rounded up to 4 KiB. */
#define VCPUFREQ_SP_REGION_SIZE(n) \
    ((((uint32_t)VCPUFREQ_SP_HEADER_SIZE + (uint32_t)VCPUFREQ_SP_SLOT_SIZE * (uint32_t)(n)) + 4095u) & ~4095u)

/* Header: written by the host only. */
#define VCPUFREQ_SP_HDR_MAGIC 0x00u
#define VCPUFREQ_SP_HDR_VERSION 0x04u
#define VCPUFREQ_SP_HDR_FEATURES 0x08u
#define VCPUFREQ_SP_HDR_HOST_STATUS 0x0cu
#define VCPUFREQ_SP_HDR_VCPU_COUNT 0x10u
#define VCPUFREQ_SP_HDR_SLOT_OFFSET 0x14u
#define VCPUFREQ_SP_HDR_SLOT_SIZE 0x18u
#define VCPUFREQ_SP_HDR_POLL_INTERVAL_US 0x1cu
#define VCPUFREQ_SP_HDR_GENERATION 0x20u
#define VCPUFREQ_SP_HDR_DOORBELL_COUNT 0x24u

/* Slot, guest area (0x00-0x1f): written by the guest only. */
#define VCPUFREQ_SP_SLOT_SEQUENCE 0x00u
#define VCPUFREQ_SP_SLOT_FLAGS 0x04u
#define VCPUFREQ_SP_SLOT_UTILIZATION 0x08u
#define VCPUFREQ_SP_SLOT_PERF_KHZ 0x0cu
/* Slot, host area (0x20-0x3f): written by the host only. */
#define VCPUFREQ_SP_SLOT_HOST_AREA 0x20u
#define VCPUFREQ_SP_SLOT_HOST_SEQUENCE 0x20u
#define VCPUFREQ_SP_SLOT_CUR_PERF_KHZ 0x24u
#define VCPUFREQ_SP_SLOT_APPLIED_CLAMP 0x28u
#define VCPUFREQ_SP_SLOT_HOST_FLAGS 0x2cu
#define VCPUFREQ_SP_SLOT_ACK_SEQUENCE 0x30u
#define VCPUFREQ_SP_SLOT_APPLIED_SLICE_US 0x34u
/* Host area written by the host's BPF programs (BPF-map pages only, header
 * feature VCPUFREQ_FEATURE_HOST_SCHEDULER), each word on its own, outside the
 * host seqlock: 0 until written. */
#define VCPUFREQ_SP_SLOT_SCHED_SEEN 0x38u
#define VCPUFREQ_SP_SLOT_SCHED_PLACEMENT 0x3cu

/* Header features (offered by the host). */
#define VCPUFREQ_FEATURE_KICK_SUPPRESSION 0x00000001u
#define VCPUFREQ_FEATURE_UTILIZATION 0x00000002u
#define VCPUFREQ_FEATURE_PERFORMANCE 0x00000004u
#define VCPUFREQ_FEATURE_LATENCY_HINT 0x00000008u
#define VCPUFREQ_FEATURE_BOOST 0x00000010u
/* The page is a BPF map: host BPF programs read the guest half at the vCPU
 * thread's scheduling events and write sched_seen and sched_placement. */
#define VCPUFREQ_FEATURE_HOST_SCHEDULER 0x00000020u

/* Header host status. */
#define VCPUFREQ_STATUS_ACTIVE 0x00000001u
#define VCPUFREQ_STATUS_DEGRADED 0x00000002u

/* Guest flags (slot flags word). Other bits are counted and ignored. */
#define VCPUFREQ_GUEST_F_LATENCY_SENSITIVE 0x00000001u
#define VCPUFREQ_GUEST_F_BOOST 0x00000002u
#define VCPUFREQ_GUEST_F_UTIL_VALID 0x00000004u
#define VCPUFREQ_GUEST_F_PERF_VALID 0x00000008u
#define VCPUFREQ_GUEST_F_KNOWN 0x0000000fu

/* Host flags (slot host_flags word). */
#define VCPUFREQ_HOST_F_KICK 0x00000001u
#define VCPUFREQ_HOST_F_CAPPED 0x00000002u
#define VCPUFREQ_HOST_F_REJECTED 0x00000004u
#define VCPUFREQ_HOST_F_ACTUATION_FAILED 0x00000008u

/* sched_seen: what the host's BPF programs last read from the guest half, in
 * one consistent read, after bounds and caps. */
#define VCPUFREQ_SEEN_SEQUENCE_MASK 0x0000ffffu /* low 16 bits of the guest sequence read */
#define VCPUFREQ_SEEN_UTIL_SHIFT 16u
#define VCPUFREQ_SEEN_UTIL_MASK 0x07ff0000u     /* utilization acted on, 0..1024 (after the cap) */
#define VCPUFREQ_SEEN_LATENCY 0x08000000u       /* latency-sensitive, honoured */
#define VCPUFREQ_SEEN_BOOST 0x10000000u         /* boost requested and granted */
#define VCPUFREQ_SEEN_CAPPED 0x20000000u        /* a value was above the VM's cap: cut to it */
#define VCPUFREQ_SEEN_REJECTED 0x40000000u      /* a fault: unknown flags, util > 1024, perf 0 */
#define VCPUFREQ_SEEN_UTIL_VALID 0x80000000u    /* the utilization field holds a request */

/* sched_placement: where the host runs this vCPU, written at its switches and migrations. */
#define VCPUFREQ_PLACE_CPU_MASK 0x00000fffu     /* host CPU + 1 (0 = not known; 4095 = CPU 4094 or above) */
#define VCPUFREQ_PLACE_CAPACITY_SHIFT 12u
#define VCPUFREQ_PLACE_CAPACITY_MASK 0x007ff000u /* capacity 0..1024 of that CPU (host topology) */
#define VCPUFREQ_PLACE_CLUSTER_SHIFT 23u
#define VCPUFREQ_PLACE_CLUSTER_MASK 0x07800000u /* its host cluster index, 15 = not in the topology */
#define VCPUFREQ_PLACE_DELAY_SHIFT 27u
#define VCPUFREQ_PLACE_DELAY_MASK 0xf8000000u   /* wait before its last run: log2(us) bucket, 0 = under 2 us */
#define VCPUFREQ_PLACE_CLUSTER_UNKNOWN 15u

struct vcpufreq_shared_header {
    uint32_t magic;            /* VCPUFREQ_SP_MAGIC */
    uint32_t version;          /* VCPUFREQ_SP_VERSION */
    uint32_t features;         /* VCPUFREQ_FEATURE_* */
    uint32_t host_status;      /* VCPUFREQ_STATUS_* */
    uint32_t vcpu_count;
    uint32_t slot_offset;      /* = VCPUFREQ_SP_HEADER_SIZE */
    uint32_t slot_size;        /* = VCPUFREQ_SP_SLOT_SIZE */
    uint32_t poll_interval_us; /* bound on an unkicked request's wait */
    uint32_t generation;       /* changes on every host (re)initialisation */
    uint32_t doorbell_count;
    uint32_t reserved[6];
};

struct vcpufreq_slot {
    /* Guest area. */
    uint32_t sequence;         /* odd while the guest writes */
    uint32_t flags;            /* VCPUFREQ_GUEST_F_* */
    uint32_t utilization;      /* 0..1024, with VCPUFREQ_GUEST_F_UTIL_VALID */
    uint32_t perf_khz;         /* 1..max, with VCPUFREQ_GUEST_F_PERF_VALID */
    uint32_t guest_reserved[4];
    /* Host area. */
    uint32_t host_sequence;    /* odd while the host writes */
    uint32_t cur_perf_khz;     /* what cur_perf would return */
    uint32_t applied_clamp;    /* util_min bits 0-15, util_max bits 16-31 */
    uint32_t host_flags;       /* VCPUFREQ_HOST_F_* */
    uint32_t ack_sequence;     /* guest sequence last consumed by the host */
    uint32_t applied_slice_us; /* EEVDF slice applied, 0 = none */
    uint32_t sched_seen;       /* BPF: VCPUFREQ_SEEN_* (single word, no seqlock) */
    uint32_t sched_placement;  /* BPF: VCPUFREQ_PLACE_* (single word, no seqlock) */
};

VCPUFREQ_STATIC_ASSERT(sizeof(struct vcpufreq_shared_header) == VCPUFREQ_SP_HEADER_SIZE, header_size);
VCPUFREQ_STATIC_ASSERT(sizeof(struct vcpufreq_slot) == VCPUFREQ_SP_SLOT_SIZE, slot_size);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, magic) == VCPUFREQ_SP_HDR_MAGIC, hdr_magic);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, version) == VCPUFREQ_SP_HDR_VERSION, hdr_version);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, features) == VCPUFREQ_SP_HDR_FEATURES, hdr_features);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, host_status) == VCPUFREQ_SP_HDR_HOST_STATUS, hdr_status);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, vcpu_count) == VCPUFREQ_SP_HDR_VCPU_COUNT, hdr_vcpus);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, slot_offset) == VCPUFREQ_SP_HDR_SLOT_OFFSET, hdr_slot_off);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, slot_size) == VCPUFREQ_SP_HDR_SLOT_SIZE, hdr_slot_size);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, poll_interval_us) == VCPUFREQ_SP_HDR_POLL_INTERVAL_US, hdr_poll);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, generation) == VCPUFREQ_SP_HDR_GENERATION, hdr_gen);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_shared_header, doorbell_count) == VCPUFREQ_SP_HDR_DOORBELL_COUNT, hdr_bells);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, sequence) == VCPUFREQ_SP_SLOT_SEQUENCE, slot_seq);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, flags) == VCPUFREQ_SP_SLOT_FLAGS, slot_flags);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, utilization) == VCPUFREQ_SP_SLOT_UTILIZATION, slot_util);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, perf_khz) == VCPUFREQ_SP_SLOT_PERF_KHZ, slot_perf);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, host_sequence) == VCPUFREQ_SP_SLOT_HOST_SEQUENCE, slot_hseq);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, cur_perf_khz) == VCPUFREQ_SP_SLOT_CUR_PERF_KHZ, slot_cur);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, applied_clamp) == VCPUFREQ_SP_SLOT_APPLIED_CLAMP, slot_clamp);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, host_flags) == VCPUFREQ_SP_SLOT_HOST_FLAGS, slot_hflags);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, ack_sequence) == VCPUFREQ_SP_SLOT_ACK_SEQUENCE, slot_ack);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, applied_slice_us) == VCPUFREQ_SP_SLOT_APPLIED_SLICE_US, slot_slice);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, sched_seen) == VCPUFREQ_SP_SLOT_SCHED_SEEN, slot_seen);
VCPUFREQ_STATIC_ASSERT(offsetof(struct vcpufreq_slot, sched_placement) == VCPUFREQ_SP_SLOT_SCHED_PLACEMENT, slot_place);

/* ---- Guest-side reference helpers ---------------------------------------
 *
 * The guest owns the guest area of its slots, the host the host area and
 * the header. Each side writes its area under a sequence counter (a seqlock:
 * odd while writing) and reads the other side's area with the matching read
 * protocol. In a kernel, __atomic_* map to WRITE_ONCE/READ_ONCE plus
 * smp_wmb(), smp_store_release(), smp_load_acquire(), smp_rmb(), smp_mb().
 */

/*
 * Publishes a request in `slot` (the guest's own). Returns nonzero when the
 * host wants a kick: then write any value to this vCPU's doorbell.
 *
 * The full fence between the sequence store and the host_flags load is what
 * makes kick suppression safe: the host sets the flag, fences, then re-reads
 * the sequence, so at least one side sees the other's store.
 */
static inline int vcpufreq_slot_publish(struct vcpufreq_slot *slot, uint32_t flags, uint32_t utilization,
                                        uint32_t perf_khz)
{
    /* Even value below the current one: recovers from a guest that stopped mid-update. */
    uint32_t even = __atomic_load_n(&slot->sequence, __ATOMIC_RELAXED) & ~1u;
    /* 0 means "never published" to a freshly started host: skip it on wrap-around. */
    uint32_t next = even + 2u == 0u ? 2u : even + 2u;

    __atomic_store_n(&slot->sequence, even + 1u, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE); /* odd sequence before any field */
    __atomic_store_n(&slot->flags, flags, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->utilization, utilization, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->perf_khz, perf_khz, __ATOMIC_RELAXED);
    __atomic_store_n(&slot->sequence, next, __ATOMIC_RELEASE); /* fields before the even sequence */
    __atomic_thread_fence(__ATOMIC_SEQ_CST);                         /* sequence before the flag load */
    return (__atomic_load_n(&slot->host_flags, __ATOMIC_RELAXED) & VCPUFREQ_HOST_F_KICK) != 0;
}

/* One consistent copy of a slot's host area. */
struct vcpufreq_host_view {
    uint32_t host_sequence;
    uint32_t cur_perf_khz;
    uint32_t applied_clamp;
    uint32_t host_flags;
    uint32_t applied_slice_us;
};

/*
 * Reads the host area of `slot` consistently. Returns nonzero on success, 0
 * when the host was writing on each of `attempts` tries (try again later).
 */
static inline int vcpufreq_slot_read_host(const struct vcpufreq_slot *slot, struct vcpufreq_host_view *out,
                                          unsigned attempts)
{
    unsigned i;
    for (i = 0; i < attempts; i++) {
        uint32_t sequence = __atomic_load_n(&slot->host_sequence, __ATOMIC_ACQUIRE);
        if (sequence & 1u)
            continue;
        out->cur_perf_khz = __atomic_load_n(&slot->cur_perf_khz, __ATOMIC_RELAXED);
        out->applied_clamp = __atomic_load_n(&slot->applied_clamp, __ATOMIC_RELAXED);
        out->host_flags = __atomic_load_n(&slot->host_flags, __ATOMIC_RELAXED);
        out->applied_slice_us = __atomic_load_n(&slot->applied_slice_us, __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE); /* fields before the re-check */
        if (__atomic_load_n(&slot->host_sequence, __ATOMIC_RELAXED) == sequence) {
            out->host_sequence = sequence;
            return 1;
        }
    }
    return 0;
}

/*
 * Reads what the host's BPF programs wrote into the host area of `slot`
 * (pages with VCPUFREQ_FEATURE_HOST_SCHEDULER). Each word is stored whole by
 * one program run, so each is consistent on its own; the two may come from
 * different moments. 0 = not written yet.
 */
static inline void vcpufreq_slot_read_sched(const struct vcpufreq_slot *slot, uint32_t *seen, uint32_t *placement)
{
    *seen = __atomic_load_n(&slot->sched_seen, __ATOMIC_RELAXED);
    *placement = __atomic_load_n(&slot->sched_placement, __ATOMIC_RELAXED);
}

/*
 * Checks a mapped region before use: magic, version, a slot for `vcpu`, an
 * active host. Returns nonzero when the guest may publish in slot `vcpu`.
 * Re-publish whenever `generation` differs from the value seen last time.
 */
static inline int vcpufreq_header_usable(const struct vcpufreq_shared_header *header, uint32_t vcpu)
{
    /* Acquire: the host stores host_status after every other header field. */
    uint32_t status = __atomic_load_n(&header->host_status, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&header->magic, __ATOMIC_RELAXED) == VCPUFREQ_SP_MAGIC &&
           __atomic_load_n(&header->version, __ATOMIC_RELAXED) == VCPUFREQ_SP_VERSION &&
           __atomic_load_n(&header->slot_offset, __ATOMIC_RELAXED) == VCPUFREQ_SP_HEADER_SIZE &&
           __atomic_load_n(&header->slot_size, __ATOMIC_RELAXED) == VCPUFREQ_SP_SLOT_SIZE &&
           vcpu < __atomic_load_n(&header->vcpu_count, __ATOMIC_RELAXED) && (status & VCPUFREQ_STATUS_ACTIVE) != 0;
}

/* The slot of `vcpu` in a region mapped at `header`. */
static inline struct vcpufreq_slot *vcpufreq_slot_of(struct vcpufreq_shared_header *header, uint32_t vcpu)
{
    return (struct vcpufreq_slot *)((unsigned char *)header + VCPUFREQ_SP_HEADER_SIZE +
                                    (size_t)vcpu * VCPUFREQ_SP_SLOT_SIZE);
}

/* Rings a doorbell (mapped at base + VCPUFREQ_DOORBELL_OFFSET + 4 * vcpu). The value is ignored. */
static inline void vcpufreq_ring_doorbell(volatile uint32_t *doorbell)
{
    *doorbell = 1u;
}

#endif /* VCPUFREQ_ABI_H */
