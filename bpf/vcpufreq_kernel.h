/*
 * vcpufreq_kernel.h: the few kernel types the vcpufreq BPF programs touch,
 * written by hand instead of the 2.8 MB vmlinux.h that bpftool generates.
 *
 * Every struct carries preserve_access_index, so clang records each field
 * access as a CO-RE relocation and libbpf rewrites the offset against the
 * running kernel's BTF at load time: only the fields we name must exist, at
 * whatever offset this kernel has them.
 */
#ifndef VCPUFREQ_KERNEL_H
#define VCPUFREQ_KERNEL_H

typedef unsigned char __u8;
typedef signed char __s8;
typedef unsigned short __u16;
typedef short __s16;
typedef unsigned int __u32;
typedef int __s32;
typedef unsigned long long __u64;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;
typedef _Bool bool;
#define true 1
#define false 0
typedef int pid_t;

/* From include/uapi/linux/bpf.h: the only values we use. */
enum bpf_map_type {
	BPF_MAP_TYPE_HASH = 1,
};
enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
	BPF_EXIST = 2,
};

/* Also from include/uapi/linux/bpf.h, for the shared-page maps of
 * vcpufreq_slot.h (kept apart from the enum above so that this stays an
 * addition). */
enum {
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
};
enum {
	BPF_F_MMAPABLE = (1U << 10),
	BPF_F_INNER_MAP = (1U << 12),
};

/* include/linux/sched.h: TASK_RUNNING, the prev_state of a task switched out
 * while still runnable. */
#define TASK_RUNNING 0

/* include/uapi/asm-generic/errno-base.h */
#define EINTR 4

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

/* The CPU a task is on; in thread_info on kernels with
 * CONFIG_THREAD_INFO_IN_TASK since 5.16 (x86, arm64, riscv). */
struct thread_info {
	__u32 cpu;
};

/* The scheduler's own accounting of a task. */
struct sched_entity {
	__u64 sum_exec_runtime; /* ns on CPU, updated at every tick and switch */
};

/* CONFIG_SCHED_INFO (selected by SCHEDSTATS and TASK_DELAY_ACCT) */
struct sched_info {
	unsigned long pcount;         /* times it was switched in */
	unsigned long long run_delay; /* ns spent runnable on a run queue, waiting; updated at switch-in */
};

struct task_struct {
	struct thread_info thread_info;
	int on_cpu; /* 1 from switch-in until the switch-out has completed */
	struct sched_entity se;
	struct sched_info sched_info;
	pid_t pid;  /* the TID */
};

/* include/linux/trace_events.h: header of every classic tracepoint record. */
struct trace_entry {
	unsigned short type;
	unsigned char flags;
	unsigned char preempt_count;
	int pid;
};

/* Records of the KVM tracepoints (include/trace/events/kvm.h,
 * arch/x86/kvm/trace.h); tracepoint/kvm/kvm_exit reads no field. */
struct trace_event_raw_kvm_userspace_exit {
	struct trace_entry ent;
	__u32 reason;
	int errno;
};

struct trace_event_raw_kvm_mmio {
	struct trace_entry ent;
	__u32 type;
	__u32 len;
	__u64 gpa;
	__u64 val;
};

struct trace_event_raw_kvm_pio {
	struct trace_entry ent;
	unsigned int rw;
	unsigned int port;
	unsigned int size;
	unsigned int count;
	unsigned int val;
};

#pragma clang attribute pop

#endif /* VCPUFREQ_KERNEL_H */
