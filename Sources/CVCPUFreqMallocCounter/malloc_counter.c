// An LD_PRELOAD allocation counter (see include/vcpufreq_malloc_counter.h).
//
// Each allocation function counts, then calls glibc's own implementation
// through its exported __libc_* entry point. Deliberately not
// dlsym(RTLD_NEXT): dlsym allocates (calloc) on first use, which would
// recurse into the wrapper before it knows where to forward. Before the
// constructor has mapped the counter file (and in a process without the
// variable) the wrappers only forward.
#define _GNU_SOURCE
#include "vcpufreq_malloc_counter.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void __libc_free(void *pointer);
extern void *__libc_memalign(size_t alignment, size_t size);

_Static_assert(sizeof(vcpufreq_malloc_counters) <= VCPUFREQ_MALLOC_COUNTERS_SIZE, "counter file too small for its layout");

static vcpufreq_malloc_counters *counters;

__attribute__((constructor)) static void vcpufreq_malloc_counter_start(void) {
    // getenv, open, mmap and close allocate nothing.
    const char *path = getenv(VCPUFREQ_MALLOC_COUNTERS_ENV);
    if (path == NULL || path[0] == '\0') return;
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void *mapping = mmap(NULL, VCPUFREQ_MALLOC_COUNTERS_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (mapping == MAP_FAILED) return;
    vcpufreq_malloc_counters *file = mapping;
    if (__atomic_load_n(&file->magic, __ATOMIC_ACQUIRE) != VCPUFREQ_MALLOC_COUNTERS_MAGIC ||
        file->version != VCPUFREQ_MALLOC_COUNTERS_VERSION) {
        munmap(mapping, VCPUFREQ_MALLOC_COUNTERS_SIZE);
        return;
    }
    __atomic_store_n(&file->pid, (uint64_t)getpid(), __ATOMIC_RELAXED);
    __atomic_store_n(&counters, file, __ATOMIC_RELEASE);
}

/// Copies `length` bytes at `address` of this process without ever
/// faulting: a frame-pointer chain through code built without frame pointers
/// can hold any value. process_vm_readv on ourselves answers EFAULT instead.
/// A syscall per frame: slow, but stacks are only taken while armed, when
/// allocations are the exception being hunted.
static int read_safely(const void *address, void *buffer, size_t length) {
    struct iovec local = {buffer, length};
    struct iovec remote = {(void *)address, length};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)length;
}

/// Largest plausible distance between two frames: a bigger step means the
/// chain left the stack (a function without a frame pointer).
#define VCPUFREQ_MALLOC_MAX_FRAME (1 << 20)

__attribute__((noinline)) static void record_stack(vcpufreq_malloc_counters *file) {
    uint64_t index = __atomic_fetch_add(&file->recorded, 1, __ATOMIC_RELAXED) % VCPUFREQ_MALLOC_STACK_SLOTS;
    uint64_t *slot = file->stacks[index];
    uintptr_t frame = (uintptr_t)__builtin_frame_address(0);
    int depth = 0;
    while (depth < VCPUFREQ_MALLOC_STACK_DEPTH && frame != 0 && (frame & 7) == 0) {
        uintptr_t pair[2];  // saved frame pointer, return address
        if (!read_safely((const void *)frame, pair, sizeof pair) || pair[1] == 0) break;
        __atomic_store_n(&slot[depth++], (uint64_t)pair[1], __ATOMIC_RELAXED);
        if (pair[0] <= frame || pair[0] - frame > VCPUFREQ_MALLOC_MAX_FRAME) break;
        frame = pair[0];
    }
    if (depth < VCPUFREQ_MALLOC_STACK_DEPTH) __atomic_store_n(&slot[depth], 0, __ATOMIC_RELAXED);
}

static inline void count(int call, size_t bytes) {
    vcpufreq_malloc_counters *file = __atomic_load_n(&counters, __ATOMIC_ACQUIRE);
    if (file == NULL) return;
    __atomic_fetch_add(&file->calls[call], 1, __ATOMIC_RELAXED);
    if (bytes != 0) __atomic_fetch_add(&file->bytes, (uint64_t)bytes, __ATOMIC_RELAXED);
    if (call != VCPUFREQ_MALLOC_CALL_FREE && __atomic_load_n(&file->armed, __ATOMIC_RELAXED) != 0) record_stack(file);
}

void *malloc(size_t size) {
    count(VCPUFREQ_MALLOC_CALL_MALLOC, size);
    return __libc_malloc(size);
}

void *calloc(size_t count_, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count_, size, &total)) total = SIZE_MAX;
    count(VCPUFREQ_MALLOC_CALL_CALLOC, total);
    return __libc_calloc(count_, size);
}

void *realloc(void *pointer, size_t size) {
    count(VCPUFREQ_MALLOC_CALL_REALLOC, size);
    return __libc_realloc(pointer, size);
}

void free(void *pointer) {
    if (pointer != NULL) count(VCPUFREQ_MALLOC_CALL_FREE, 0);
    __libc_free(pointer);
}

void *memalign(size_t alignment, size_t size) {
    count(VCPUFREQ_MALLOC_CALL_MEMALIGN, size);
    return __libc_memalign(alignment, size);
}

void *aligned_alloc(size_t alignment, size_t size) {
    count(VCPUFREQ_MALLOC_CALL_MEMALIGN, size);
    return __libc_memalign(alignment, size);
}

int posix_memalign(void **result, size_t alignment, size_t size) {
    // posix_memalign's own contract: a power of two multiple of sizeof(void *).
    if (alignment % sizeof(void *) != 0 || (alignment & (alignment - 1)) != 0 || alignment == 0) return EINVAL;
    count(VCPUFREQ_MALLOC_CALL_MEMALIGN, size);
    void *pointer = __libc_memalign(alignment, size);
    if (pointer == NULL) return ENOMEM;
    *result = pointer;
    return 0;
}

void *valloc(size_t size) {
    count(VCPUFREQ_MALLOC_CALL_MEMALIGN, size);
    return __libc_memalign((size_t)sysconf(_SC_PAGESIZE), size);
}

void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t rounded = size == 0 ? page : (size + page - 1) & ~(page - 1);
    count(VCPUFREQ_MALLOC_CALL_MEMALIGN, rounded);
    return __libc_memalign(page, rounded);
}
