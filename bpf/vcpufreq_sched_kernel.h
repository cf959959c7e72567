/*
 * vcpufreq_sched_kernel.h: the sched_ext ABI the scheduler of
 * vcpufreq_sched.bpf.c uses, written by hand from the kernel's headers
 * (include/linux/sched/ext.h, kernel/sched/ext/internal.h and ext.c of
 * Linux 7.3) instead of a 2.8 MB vmlinux.h.
 *
 * - Structs the programs read carry preserve_access_index (CO-RE): only the
 *   named fields must exist. task_struct is declared here as the flavor
 *   task_struct___sched (libbpf matches it to the kernel's task_struct and
 *   ignores the suffix), so vcpufreq_kernel.h, shared with the monitor, does
 *   not grow sched_ext fields older kernels lack.
 * - struct sched_ext_ops is the subset of members we set; libbpf copies them
 *   by name into the kernel's struct (members we leave out stay NULL / 0).
 * - The kfuncs are declared with the prototypes BPF programs see in 7.3's
 *   BTF. Those the kernel marks KF_IMPLICIT_ARGS take a trailing
 *   `const struct bpf_prog_aux *` that the verifier supplies; BPF code calls
 *   them without it. The loader checks every name below in the running
 *   kernel's BTF before loading (SchedExtSupport.requiredKfuncs) and refuses
 *   with the missing names, so an older sched_ext (6.12's scx_bpf_dispatch
 *   family) is named, not a libbpf error.
 */
#ifndef VCPUFREQ_SCHED_KERNEL_H
#define VCPUFREQ_SCHED_KERNEL_H

#include "vcpufreq_kernel.h"
#include <bpf/bpf_helpers.h>

typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;

/* include/uapi/linux/bpf.h: the map types and flags vcpufreq_kernel.h does not name. */
enum {
	BPF_MAP_TYPE_PERCPU_ARRAY = 6,
	BPF_MAP_TYPE_RINGBUF = 27,
	BPF_MAP_TYPE_TASK_STORAGE = 29,
};
#define BPF_F_NO_PREALLOC (1U << 0)
#define BPF_LOCAL_STORAGE_GET_F_CREATE (1ULL << 0)

/* include/linux/sched/ext.h */
#define SCX_OPS_NAME_LEN 128
#define SCX_DSQ_FLAG_BUILTIN (1ULL << 63)
#define SCX_DSQ_FLAG_LOCAL_ON (1ULL << 62)
#define SCX_DSQ_LOCAL (SCX_DSQ_FLAG_BUILTIN | 2)
#define SCX_DSQ_LOCAL_ON (SCX_DSQ_FLAG_BUILTIN | SCX_DSQ_FLAG_LOCAL_ON)

/* kernel/sched/ext/internal.h: enq_flags, deq_flags, kick flags. */
#define SCX_ENQ_WAKEUP (1ULL << 0)   /* ENQUEUE_WAKEUP */
#define SCX_ENQ_HEAD (1ULL << 4)     /* ENQUEUE_HEAD */
#define SCX_ENQ_PREEMPT (1ULL << 32) /* preempt the CPU's current task; implies HEAD */
#define SCX_DEQ_SLEEP (1ULL << 0)    /* DEQUEUE_SLEEP */
#define SCX_KICK_IDLE (1ULL << 0)
#define SCX_KICK_PREEMPT (1ULL << 1)

/* include/linux/numa.h */
#define NUMA_NO_NODE (-1)

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* include/linux/cpumask_types.h; only ever handed to kfuncs by pointer. */
struct cpumask {
	unsigned long bits[1];
};

/* kernel/bpf/cpumask.c: a cpumask BPF programs own (a referenced kptr). */
struct bpf_cpumask {
	struct cpumask cpumask;
	int usage;
};

/* include/linux/sched/ext.h: the fields of p->scx we read. */
struct sched_ext_entity {
	__u32 weight;    /* 1...10000; 100 for nice 0 */
	__u64 dsq_vtime; /* the order in a vtime-ordered DSQ */
};

/* The kernel's task_struct (see the header comment). */
struct task_struct___sched {
	pid_t pid;                      /* the TID */
	const struct cpumask *cpus_ptr; /* the CPUs it may run on */
	struct sched_ext_entity scx;
};

/* kernel/sched/ext/internal.h: why the scheduler is being disabled. kind
 * must be an enum here too: libbpf refuses to relocate an int onto it. */
enum scx_exit_kind {
	SCX_EXIT_NONE = 0,
};
struct scx_exit_info {
	enum scx_exit_kind kind;
	s32 exit_cpu;
	s64 exit_code;
	const char *reason;
	char *msg;
};

/* Arguments of ops.init_task() and ops.exit_task(); we read none. */
struct scx_init_task_args {
	bool fork;
};
struct scx_exit_task_args {
	bool cancelled;
};

/* Argument blocks of the arg-wrapped kfuncs (more than five arguments). */
struct scx_bpf_select_cpu_and_args {
	s32 prev_cpu;
	u64 wake_flags;
	u64 flags;
};
struct scx_bpf_dsq_insert_vtime_args {
	u64 dsq_id;
	u64 slice;
	u64 vtime;
	u64 enq_flags;
};

#pragma clang attribute pop

/* The members of the kernel's struct sched_ext_ops we set. */
struct sched_ext_ops {
	s32 (*select_cpu)(struct task_struct *p, s32 prev_cpu, u64 wake_flags);
	void (*enqueue)(struct task_struct *p, u64 enq_flags);
	void (*dispatch)(s32 cpu, struct task_struct *prev);
	void (*runnable)(struct task_struct *p, u64 enq_flags);
	void (*running)(struct task_struct *p);
	void (*stopping)(struct task_struct *p, bool runnable);
	void (*quiescent)(struct task_struct *p, u64 deq_flags);
	s32 (*init_task)(struct task_struct *p, struct scx_init_task_args *args);
	void (*exit_task)(struct task_struct *p, struct scx_exit_task_args *args);
	void (*enable)(struct task_struct *p);
	s32 (*init)(void);
	void (*exit)(struct scx_exit_info *info);
	u64 flags;
	u32 timeout_ms;
	char name[SCX_OPS_NAME_LEN];
};

/* sched_ext kfuncs (kernel/sched/ext/ext.c, idle.c), as BPF sees them. */
extern s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
extern s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags, bool *is_idle) __ksym;
extern s32 __scx_bpf_select_cpu_and(struct task_struct *p, const struct cpumask *cpus_allowed,
				    struct scx_bpf_select_cpu_and_args *args) __ksym;
extern void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
extern bool __scx_bpf_dsq_insert_vtime(struct task_struct *p, struct scx_bpf_dsq_insert_vtime_args *args) __ksym;
extern bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
extern s32 scx_bpf_dsq_nr_queued(u64 dsq_id) __ksym;
extern void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
extern s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
extern bool scx_bpf_task_set_slice(struct task_struct *p, u64 slice) __ksym;
extern u32 scx_bpf_nr_cpu_ids(void) __ksym;
extern u64 scx_bpf_now(void) __ksym;
extern void scx_bpf_error_bstr(char *fmt, unsigned long long *data, u32 data__sz) __ksym;

/* BPF cpumasks (kernel/bpf/cpumask.c) and RCU (kernel/bpf/helpers.c). */
extern struct bpf_cpumask *bpf_cpumask_create(void) __ksym;
extern void bpf_cpumask_release(struct bpf_cpumask *cpumask) __ksym;
extern int bpf_cpumask_populate(struct bpf_cpumask *cpumask, void *src, __u64 src__sz) __ksym;
extern bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
extern bool bpf_cpumask_intersects(const struct cpumask *src1, const struct cpumask *src2) __ksym;
extern u32 bpf_cpumask_any_and_distribute(const struct cpumask *src1, const struct cpumask *src2) __ksym;

#endif /* VCPUFREQ_SCHED_KERNEL_H */
