// KVM ioctl wrappers for the reference VMM. See include/vcpufreq_kvm.h.
#define _GNU_SOURCE
#include "vcpufreq_kvm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

// The mirrored constants must equal the kernel's.
_Static_assert(VCPUFREQ_KVM_API_VERSION == KVM_API_VERSION, "KVM_API_VERSION");
_Static_assert(VCPUFREQ_KVM_CAP_NR_VCPUS == KVM_CAP_NR_VCPUS, "KVM_CAP_NR_VCPUS");
_Static_assert(VCPUFREQ_KVM_CAP_COALESCED_MMIO == KVM_CAP_COALESCED_MMIO, "KVM_CAP_COALESCED_MMIO");
_Static_assert(VCPUFREQ_KVM_CAP_IOEVENTFD == KVM_CAP_IOEVENTFD, "KVM_CAP_IOEVENTFD");
_Static_assert(VCPUFREQ_KVM_CAP_MAX_VCPUS == KVM_CAP_MAX_VCPUS, "KVM_CAP_MAX_VCPUS");
_Static_assert(VCPUFREQ_KVM_CAP_READONLY_MEM == KVM_CAP_READONLY_MEM, "KVM_CAP_READONLY_MEM");
_Static_assert(VCPUFREQ_KVM_CAP_IOEVENTFD_ANY_LENGTH == KVM_CAP_IOEVENTFD_ANY_LENGTH, "ANY_LENGTH");
_Static_assert(VCPUFREQ_KVM_CAP_IMMEDIATE_EXIT == KVM_CAP_IMMEDIATE_EXIT, "KVM_CAP_IMMEDIATE_EXIT");
_Static_assert(VCPUFREQ_KVM_MEM_READONLY == KVM_MEM_READONLY, "KVM_MEM_READONLY");
_Static_assert(VCPUFREQ_KVM_IOEVENTFD_DATAMATCH == KVM_IOEVENTFD_FLAG_DATAMATCH, "DATAMATCH");
_Static_assert(VCPUFREQ_KVM_IOEVENTFD_PIO == KVM_IOEVENTFD_FLAG_PIO, "PIO");
_Static_assert(VCPUFREQ_KVM_IOEVENTFD_DEASSIGN == KVM_IOEVENTFD_FLAG_DEASSIGN, "DEASSIGN");

static int result(long r) { return r < 0 ? -errno : (int)r; }

static int ioctl_retrying(int fd, unsigned long request, void *argument) {
    long r;
    do { r = ioctl(fd, request, argument); } while (r < 0 && errno == EINTR);
    return result(r);
}

int vcpufreq_kvm_open(const char *path) {
    int fd;
    do { fd = open(path, O_RDWR | O_CLOEXEC); } while (fd < 0 && errno == EINTR);
    return result(fd);
}

// close is never retried: the fd is gone even when it reports EINTR.
int vcpufreq_kvm_close(int fd) { return result(close(fd)); }

int vcpufreq_kvm_get_api_version(int kvm_fd) { return ioctl_retrying(kvm_fd, KVM_GET_API_VERSION, NULL); }

int vcpufreq_kvm_check_extension(int fd, uint32_t capability) {
    return result(ioctl(fd, KVM_CHECK_EXTENSION, (unsigned long)capability));
}

int vcpufreq_kvm_create_vm(int kvm_fd) {
    long r;
    do { r = ioctl(kvm_fd, KVM_CREATE_VM, 0UL); } while (r < 0 && errno == EINTR);
    return result(r);
}

int vcpufreq_kvm_vcpu_mmap_size(int kvm_fd) { return ioctl_retrying(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, NULL); }

int vcpufreq_kvm_set_user_memory_region(int vm_fd, uint32_t slot, uint32_t flags,
                                        uint64_t guest_physical_address, uint64_t size,
                                        void *host_address) {
    struct kvm_userspace_memory_region region = {
        .slot = slot,
        .flags = flags,
        .guest_phys_addr = guest_physical_address,
        .memory_size = size,
        .userspace_addr = (uint64_t)(uintptr_t)host_address,
    };
    return ioctl_retrying(vm_fd, KVM_SET_USER_MEMORY_REGION, &region);
}

int vcpufreq_kvm_ioeventfd(int vm_fd, uint64_t address, uint32_t length, int event_fd,
                           uint32_t flags, uint64_t datamatch) {
    struct kvm_ioeventfd request = {
        .datamatch = datamatch,
        .addr = address,
        .len = length,
        .fd = event_fd,
        .flags = flags,
    };
    return ioctl_retrying(vm_fd, KVM_IOEVENTFD, &request);
}

int vcpufreq_kvm_create_vcpu(int vm_fd, uint32_t vcpu_id) {
    long r;
    do { r = ioctl(vm_fd, KVM_CREATE_VCPU, (unsigned long)vcpu_id); } while (r < 0 && errno == EINTR);
    return result(r);
}

#if defined(__x86_64__)

_Static_assert(sizeof(struct vcpufreq_kvm_regs) == sizeof(struct kvm_regs), "kvm_regs layout");
_Static_assert(offsetof(struct vcpufreq_kvm_regs, rip) == offsetof(struct kvm_regs, rip), "kvm_regs.rip");
_Static_assert(offsetof(struct vcpufreq_kvm_regs, r15) == offsetof(struct kvm_regs, r15), "kvm_regs.r15");

int vcpufreq_kvm_set_supported_cpuid(int kvm_fd, int vcpu_fd) {
    // The kernel answers E2BIG until the buffer holds every entry.
    for (uint32_t entries = 128; entries <= 4096; entries *= 2) {
        size_t bytes = sizeof(struct kvm_cpuid2) + entries * sizeof(struct kvm_cpuid_entry2);
        struct kvm_cpuid2 *cpuid = calloc(1, bytes);
        if (cpuid == NULL) return -ENOMEM;
        cpuid->nent = entries;
        int r = ioctl_retrying(kvm_fd, KVM_GET_SUPPORTED_CPUID, cpuid);
        if (r == -E2BIG) { free(cpuid); continue; }
        if (r >= 0) r = ioctl_retrying(vcpu_fd, KVM_SET_CPUID2, cpuid);
        free(cpuid);
        return r;
    }
    return -E2BIG;
}

int vcpufreq_kvm_enter_user_long_mode(int vcpu_fd, uint64_t page_table_root) {
    struct kvm_sregs sregs;
    int r = ioctl_retrying(vcpu_fd, KVM_GET_SREGS, &sregs);
    if (r < 0) return r;
    sregs.cr3 = page_table_root;
    sregs.cr4 = (1u << 5) | (1u << 9) | (1u << 10);  // PAE | OSFXSR | OSXMMEXCPT
    sregs.cr0 = 0x80050033;                           // PG|AM|WP|NE|ET|MP|PE
    sregs.efer = (1u << 8) | (1u << 10);              // LME | LMA
    // __USER_CS / __USER_DS of Linux: the selectors PVM expects at CPL3.
    struct kvm_segment code = {
        .base = 0, .limit = 0xffffffff, .selector = 0x33, .type = 11, .present = 1,
        .dpl = 3, .db = 0, .s = 1, .l = 1, .g = 1,
    };
    struct kvm_segment data = code;
    data.type = 3;
    data.selector = 0x2b;
    data.l = 0;
    data.db = 1;
    sregs.cs = code;
    sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
    return ioctl_retrying(vcpu_fd, KVM_SET_SREGS, &sregs);
}

int vcpufreq_kvm_get_regs(int vcpu_fd, struct vcpufreq_kvm_regs *regs) {
    struct kvm_regs k;
    int r = ioctl_retrying(vcpu_fd, KVM_GET_REGS, &k);
    if (r < 0) return r;
    memcpy(regs, &k, sizeof k);
    return r;
}

int vcpufreq_kvm_set_regs(int vcpu_fd, const struct vcpufreq_kvm_regs *regs) {
    struct kvm_regs k;
    memcpy(&k, regs, sizeof k);
    return ioctl_retrying(vcpu_fd, KVM_SET_REGS, &k);
}

#else

int vcpufreq_kvm_set_supported_cpuid(int kvm_fd, int vcpu_fd) { (void)kvm_fd; (void)vcpu_fd; return -ENOSYS; }
int vcpufreq_kvm_enter_user_long_mode(int vcpu_fd, uint64_t root) { (void)vcpu_fd; (void)root; return -ENOSYS; }
int vcpufreq_kvm_get_regs(int vcpu_fd, struct vcpufreq_kvm_regs *regs) { (void)vcpu_fd; (void)regs; return -ENOSYS; }
int vcpufreq_kvm_set_regs(int vcpu_fd, const struct vcpufreq_kvm_regs *regs) { (void)vcpu_fd; (void)regs; return -ENOSYS; }

#endif

// Not retried on EINTR: that is how a watchdog or immediate_exit stops the vCPU.
int vcpufreq_kvm_run(int vcpu_fd) { return result(ioctl(vcpu_fd, KVM_RUN, 0UL)); }

uint32_t vcpufreq_kvm_run_exit_reason(const void *run) {
    return ((const struct kvm_run *)run)->exit_reason;
}

void vcpufreq_kvm_run_set_immediate_exit(void *run, uint8_t value) {
    __atomic_store_n(&((struct kvm_run *)run)->immediate_exit, value, __ATOMIC_SEQ_CST);
}

// kvm_run.mmio.data holds 8 bytes; KVM never reports more, but a length is
// never trusted to index a buffer.
void vcpufreq_kvm_run_mmio(const void *run, struct vcpufreq_kvm_mmio *mmio) {
    const struct kvm_run *r = run;
    uint32_t length = r->mmio.len <= 8 ? r->mmio.len : 8;
    uint64_t data = 0;
    memcpy(&data, r->mmio.data, length);  // x86 and arm64 are little-endian
    mmio->guest_physical_address = r->mmio.phys_addr;
    mmio->data = data;
    mmio->length = r->mmio.len;
    mmio->is_write = r->mmio.is_write;
}

void vcpufreq_kvm_run_set_mmio_data(void *run, uint64_t value) {
    struct kvm_run *r = run;
    uint32_t length = r->mmio.len <= 8 ? r->mmio.len : 8;
    memcpy(r->mmio.data, &value, length);
}

void vcpufreq_kvm_run_io(const void *run, struct vcpufreq_kvm_io *io) {
    const struct kvm_run *r = run;
    io->port = r->io.port;
    io->size = r->io.size;
    io->is_out = r->io.direction == KVM_EXIT_IO_OUT;
    io->count = r->io.count;
    io->data_offset = r->io.data_offset;
}

static uint8_t *io_access(const void *run, size_t run_size, uint32_t index) {
    const struct kvm_run *r = run;
    uint64_t size = r->io.size;
    if (size == 0 || size > 8 || index >= r->io.count) return NULL;
    uint64_t offset = r->io.data_offset + (uint64_t)index * size;
    if (offset < r->io.data_offset || offset + size > run_size) return NULL;
    return (uint8_t *)run + offset;
}

int vcpufreq_kvm_run_io_get(const void *run, size_t run_size, uint32_t index, uint64_t *value) {
    uint8_t *data = io_access(run, run_size, index);
    if (data == NULL) return -EINVAL;
    uint64_t v = 0;
    memcpy(&v, data, ((const struct kvm_run *)run)->io.size);
    *value = v;
    return 0;
}

int vcpufreq_kvm_run_io_set(void *run, size_t run_size, uint32_t index, uint64_t value) {
    uint8_t *data = io_access(run, run_size, index);
    if (data == NULL) return -EINVAL;
    memcpy(data, &value, ((const struct kvm_run *)run)->io.size);
    return 0;
}

void vcpufreq_kvm_run_exit_detail(const void *run, struct vcpufreq_kvm_exit_detail *detail) {
    const struct kvm_run *r = run;
    memset(detail, 0, sizeof *detail);
    switch (r->exit_reason) {
    case KVM_EXIT_FAIL_ENTRY:
        detail->word[0] = r->fail_entry.hardware_entry_failure_reason;
        detail->word[1] = r->fail_entry.cpu;
        break;
    case KVM_EXIT_EXCEPTION:
        detail->word[0] = r->ex.exception;
        detail->word[1] = r->ex.error_code;
        break;
    case KVM_EXIT_INTERNAL_ERROR:
        detail->word[0] = r->internal.suberror;
        detail->word[1] = r->internal.ndata;
        detail->word[2] = r->internal.ndata > 0 ? r->internal.data[0] : 0;
        detail->word[3] = r->internal.ndata > 1 ? r->internal.data[1] : 0;
        break;
    case KVM_EXIT_UNKNOWN:
        detail->word[0] = r->hw.hardware_exit_reason;
        break;
    default:
        break;
    }
}

pid_t vcpufreq_kvm_gettid(void) { return (pid_t)syscall(SYS_gettid); }

int vcpufreq_kvm_set_thread_name(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    return -pthread_setname_np(pthread_self(), truncated);
}

int vcpufreq_kvm_set_timer_slack(unsigned long nanoseconds) {
    return prctl(PR_SET_TIMERSLACK, nanoseconds, 0, 0, 0) == 0 ? 0 : -errno;
}

int vcpufreq_kvm_kick_signal(void) { return SIGRTMIN; }

static void ignore_kick(int signal) { (void)signal; }

int vcpufreq_kvm_install_kick_handler(int signal) {
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = ignore_kick;
    sigemptyset(&action.sa_mask);
    action.sa_flags = 0;  // no SA_RESTART: KVM_RUN must return -EINTR
    return result(sigaction(signal, &action, NULL));
}

int vcpufreq_kvm_kick_thread(pthread_t thread, int signal) { return -pthread_kill(thread, signal); }

int vcpufreq_kvm_unblock_signal(int signal) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, signal);
    return -pthread_sigmask(SIG_UNBLOCK, &set, NULL);
}

int vcpufreq_kvm_memfd_create(const char *name, uint64_t size) {
    int fd = memfd_create(name, MFD_CLOEXEC);
    if (fd < 0) return -errno;
    int r;
    do { r = ftruncate(fd, (off_t)size); } while (r < 0 && errno == EINTR);
    if (r < 0) {
        int error = errno;
        close(fd);
        return -error;
    }
    return fd;
}

int vcpufreq_kvm_eventfd_create(int non_blocking) {
    return result(eventfd(0, EFD_CLOEXEC | (non_blocking ? EFD_NONBLOCK : 0)));
}

extern char **environ;

extern const unsigned char vcpufreq_guest_code_begin[];
extern const unsigned char vcpufreq_guest_code_end[];

const void *vcpufreq_kvm_guest_code(size_t *size) {
    *size = (size_t)(vcpufreq_guest_code_end - vcpufreq_guest_code_begin);
    return vcpufreq_guest_code_begin;
}
