// The C side of vcpufreq's reference VMM: thin KVM ioctl wrappers, accessors
// for the kvm_run page, and the guest script interpreter (guest_interpreter.S).
//
// <linux/kvm.h> stays inside kvm.c: this header uses only fixed-width types,
// so its structs and constants are what Swift sees. kvm.c checks every
// mirrored constant against the kernel header with _Static_assert.
//
// Every function that calls into the kernel returns a value >= 0 on success
// and -errno on failure (never sets errno for the caller to read later), so
// Swift can turn the result into an Errno without a thread-local lookup.
#ifndef VCPUFREQ_KVM_H
#define VCPUFREQ_KVM_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

// MARK: - Constants mirrored from <linux/kvm.h>

/// The only KVM API version there has ever been (KVM_API_VERSION).
#define VCPUFREQ_KVM_API_VERSION 12

/// Capabilities asked with KVM_CHECK_EXTENSION (KVM_CAP_*).
enum {
    VCPUFREQ_KVM_CAP_NR_VCPUS = 9,
    VCPUFREQ_KVM_CAP_COALESCED_MMIO = 15,
    VCPUFREQ_KVM_CAP_IOEVENTFD = 36,
    VCPUFREQ_KVM_CAP_MAX_VCPUS = 66,
    VCPUFREQ_KVM_CAP_READONLY_MEM = 81,
    VCPUFREQ_KVM_CAP_IOEVENTFD_ANY_LENGTH = 122,
    VCPUFREQ_KVM_CAP_IMMEDIATE_EXIT = 136,
};

/// kvm_userspace_memory_region.flags (KVM_MEM_*).
enum {
    VCPUFREQ_KVM_MEM_READONLY = 1u << 1,
};

/// kvm_ioeventfd.flags (KVM_IOEVENTFD_FLAG_*).
enum {
    VCPUFREQ_KVM_IOEVENTFD_DATAMATCH = 1u << 0,
    VCPUFREQ_KVM_IOEVENTFD_PIO = 1u << 1,
    VCPUFREQ_KVM_IOEVENTFD_DEASSIGN = 1u << 2,
};

// MARK: - Plain structs Swift can see

/// The general-purpose registers, field for field the layout of x86's struct kvm_regs.
struct vcpufreq_kvm_regs {
    uint64_t rax, rbx, rcx, rdx;
    uint64_t rsi, rdi, rsp, rbp;
    uint64_t r8, r9, r10, r11;
    uint64_t r12, r13, r14, r15;
    uint64_t rip, rflags;
};

/// kvm_run.mmio, with the data bytes as a little-endian integer.
struct vcpufreq_kvm_mmio {
    uint64_t guest_physical_address;
    /// Bytes written by the guest (writes); unspecified for reads.
    uint64_t data;
    /// 1, 2, 4 or 8.
    uint32_t length;
    uint8_t is_write;
};

/// kvm_run.io.
struct vcpufreq_kvm_io {
    uint16_t port;
    /// Bytes per access: 1, 2 or 4.
    uint8_t size;
    uint8_t is_out;
    /// Accesses in this exit (> 1 for rep ins/outs).
    uint32_t count;
    /// Offset of the data from the start of kvm_run.
    uint64_t data_offset;
};

/// The exit-reason specific words an unexpected exit is reported with:
/// FAIL_ENTRY: hardware_entry_failure_reason, cpu; EXCEPTION: exception, error_code;
/// INTERNAL_ERROR: suberror, ndata, data[0], data[1]; UNKNOWN: hardware_exit_reason.
struct vcpufreq_kvm_exit_detail {
    uint64_t word[4];
};

// MARK: - System and VM ioctls

/// open(path, O_RDWR | O_CLOEXEC).
int vcpufreq_kvm_open(const char *path);
int vcpufreq_kvm_close(int fd);
/// KVM_GET_API_VERSION.
int vcpufreq_kvm_get_api_version(int kvm_fd);
/// KVM_CHECK_EXTENSION on the system or a VM fd: 0 = absent, > 0 = present (or a count).
int vcpufreq_kvm_check_extension(int fd, uint32_t capability);
/// KVM_CREATE_VM (machine type 0): the VM fd.
int vcpufreq_kvm_create_vm(int kvm_fd);
/// KVM_GET_VCPU_MMAP_SIZE: bytes of each vCPU's kvm_run mapping.
int vcpufreq_kvm_vcpu_mmap_size(int kvm_fd);
/// KVM_SET_USER_MEMORY_REGION. size 0 deletes the slot.
int vcpufreq_kvm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags,
                                        uint64_t guest_physical_address, uint64_t size,
                                        void *host_address);
/// KVM_IOEVENTFD (assign, or deassign with VCPUFREQ_KVM_IOEVENTFD_DEASSIGN in flags).
int vcpufreq_kvm_ioeventfd(int vm_fd, uint64_t address, uint32_t length, int event_fd,
                           uint32_t flags, uint64_t datamatch);
/// KVM_CREATE_VCPU: the vCPU fd.
int vcpufreq_kvm_create_vcpu(int vm_fd, uint32_t vcpu_id);

// MARK: - vCPU ioctls

/// KVM_GET_SUPPORTED_CPUID on the system fd, then KVM_SET_CPUID2 on the vCPU:
/// a long-mode guest needs a sane CPUID.
int vcpufreq_kvm_set_supported_cpuid(int kvm_fd, int vcpu_fd);
/// KVM_GET_SREGS, then 64-bit long mode with paging at CPL3 (the only mode a
/// PVM host runs natively): CR0 PG|AM|WP|NE|ET|MP|PE, CR4 PAE|OSFXSR|OSXMMEXCPT,
/// EFER LME|LMA, CR3 = page_table_root, CS 0x33 / DS,ES,FS,GS,SS 0x2b with DPL 3,
/// flat segments. Then KVM_SET_SREGS. Returns -ENOSYS on non-x86 hosts.
int vcpufreq_kvm_enter_user_long_mode(int vcpu_fd, uint64_t page_table_root);
/// KVM_GET_REGS / KVM_SET_REGS.
int vcpufreq_kvm_get_regs(int vcpu_fd, struct vcpufreq_kvm_regs *regs);
int vcpufreq_kvm_set_regs(int vcpu_fd, const struct vcpufreq_kvm_regs *regs);
/// KVM_RUN: 0 when the vCPU exited to userspace (see the exit reason), -EINTR
/// when a signal or immediate_exit stopped it.
int vcpufreq_kvm_run(int vcpu_fd);

// MARK: - The kvm_run page (the vCPU's mmap)

uint32_t vcpufreq_kvm_run_exit_reason(const void *run);
/// Sets kvm_run.immediate_exit: KVM_RUN then completes any pending MMIO/PIO
/// and returns -EINTR before entering the guest. Atomic, so a watchdog thread
/// may set it while the vCPU thread is in KVM_RUN.
void vcpufreq_kvm_run_set_immediate_exit(void *run, uint8_t value);
void vcpufreq_kvm_run_mmio(const void *run, struct vcpufreq_kvm_mmio *mmio);
/// Stores the answer to an MMIO read: the low `length` bytes of value, little-endian.
void vcpufreq_kvm_run_set_mmio_data(void *run, uint64_t value);
void vcpufreq_kvm_run_io(const void *run, struct vcpufreq_kvm_io *io);
/// Reads or writes access `index` of an IO exit. Returns -EINVAL when the
/// access lies outside the `run_size` bytes of the mapping.
int vcpufreq_kvm_run_io_get(const void *run, size_t run_size, uint32_t index, uint64_t *value);
int vcpufreq_kvm_run_io_set(void *run, size_t run_size, uint32_t index, uint64_t value);
void vcpufreq_kvm_run_exit_detail(const void *run, struct vcpufreq_kvm_exit_detail *detail);

// MARK: - Threads, signals, files

pid_t vcpufreq_kvm_gettid(void);
/// Names the calling thread (at most 15 bytes are kept): shows in
/// /proc/<pid>/task/<tid>/comm, top -H and perf.
int vcpufreq_kvm_set_thread_name(const char *name);
/// prctl(PR_SET_TIMERSLACK): how late the kernel may wake the calling
/// thread's timed sleeps (default 50 µs; 1 = as exact as the timer allows).
int vcpufreq_kvm_set_timer_slack(unsigned long nanoseconds);
/// The signal a watchdog sends to a vCPU thread to pull it out of KVM_RUN:
/// SIGRTMIN (as Firecracker does), unused by libc, Swift and Foundation.
int vcpufreq_kvm_kick_signal(void);
/// Installs a handler that does nothing for `signal`, without SA_RESTART, so
/// the signal makes KVM_RUN return -EINTR instead of killing the process.
int vcpufreq_kvm_install_kick_handler(int signal);
/// pthread_kill: 0 or -error.
int vcpufreq_kvm_kick_thread(pthread_t thread, int signal);
/// Unblocks `signal` in the calling thread (threads inherit their creator's
/// mask, and a blocked kick could never interrupt KVM_RUN).
int vcpufreq_kvm_unblock_signal(int signal);
/// memfd_create(name, MFD_CLOEXEC), then ftruncate to size.
int vcpufreq_kvm_memfd_create(const char *name, uint64_t size);
/// eventfd(0, EFD_CLOEXEC [| EFD_NONBLOCK]).
int vcpufreq_kvm_eventfd_create(int non_blocking);

// MARK: - Guest code

/// The guest script interpreter: position-independent 64-bit code, copied
/// into guest RAM by the VMM. *size receives its length in bytes.
const void *vcpufreq_kvm_guest_code(size_t *size);

// MARK: - Atomics on shared memory (guest RAM, counters)

static inline uint32_t vcpufreq_kvm_load32_acquire(const void *address) {
    return __atomic_load_n((const uint32_t *)address, __ATOMIC_ACQUIRE);
}
static inline void vcpufreq_kvm_store32_release(void *address, uint32_t value) {
    __atomic_store_n((uint32_t *)address, value, __ATOMIC_RELEASE);
}
static inline uint64_t vcpufreq_kvm_load64_acquire(const void *address) {
    return __atomic_load_n((const uint64_t *)address, __ATOMIC_ACQUIRE);
}
static inline void vcpufreq_kvm_store64_release(void *address, uint64_t value) {
    __atomic_store_n((uint64_t *)address, value, __ATOMIC_RELEASE);
}
/// Relaxed counter increment: exit counters are read by other threads while running.
static inline void vcpufreq_kvm_counter_add(uint64_t *counter, uint64_t amount) {
    __atomic_fetch_add(counter, amount, __ATOMIC_RELAXED);
}
static inline uint64_t vcpufreq_kvm_counter_load(const uint64_t *counter) {
    return __atomic_load_n(counter, __ATOMIC_RELAXED);
}

#endif
