// The counter file of the allocation-counting LD_PRELOAD library
// (libVCPUFreqMallocCounter.so), shared by the library and
// `vcpufreq bench daemon` (Sources/VCPUFreqBench/MallocCounterFile.swift
// declares the same layout; keep them equal).
//
// The bench creates a file of VCPUFREQ_MALLOC_COUNTERS_SIZE zero bytes,
// writes the magic, and starts the daemon with
//   LD_PRELOAD=.../libVCPUFreqMallocCounter.so
//   VCPUFREQ_MALLOC_COUNTERS=<that file>
// Every allocation call of the daemon then bumps a counter in the shared
// mapping (relaxed atomics), and the bench reads the counts whenever it
// likes: the daemon needs no cooperation and no code of its own for it.
//
// While the bench sets `armed` (during its measurement windows), every
// allocation also records its call stack (return addresses, walked along
// the frame pointers) in a ring of VCPUFREQ_MALLOC_STACK_SLOTS, so the bench
// can name the call site of any allocation on the request path.
#ifndef VCPUFREQ_MALLOC_COUNTER_H
#define VCPUFREQ_MALLOC_COUNTER_H

#include <stdint.h>

/// Environment variable naming the counter file.
#define VCPUFREQ_MALLOC_COUNTERS_ENV "VCPUFREQ_MALLOC_COUNTERS"
/// "VCPFMALC" little-endian: the library only counts into a file the bench
/// initialised, so a stray variable never scribbles over an unrelated file.
#define VCPUFREQ_MALLOC_COUNTERS_MAGIC 0x434c414d46504356ULL
#define VCPUFREQ_MALLOC_COUNTERS_VERSION 2
/// Bytes the bench creates and both sides map.
#define VCPUFREQ_MALLOC_COUNTERS_SIZE 65536
/// Call stacks kept (the latest overwrite the oldest) and frames per stack.
#define VCPUFREQ_MALLOC_STACK_SLOTS 256
#define VCPUFREQ_MALLOC_STACK_DEPTH 24

/// Index of each counter in `calls`.
enum {
    VCPUFREQ_MALLOC_CALL_MALLOC = 0,
    VCPUFREQ_MALLOC_CALL_CALLOC = 1,
    VCPUFREQ_MALLOC_CALL_REALLOC = 2,
    /// posix_memalign, aligned_alloc, memalign, valloc, pvalloc.
    VCPUFREQ_MALLOC_CALL_MEMALIGN = 3,
    /// free of a non-NULL pointer.
    VCPUFREQ_MALLOC_CALL_FREE = 4,
    VCPUFREQ_MALLOC_CALL_COUNT = 5,
};

/// The file's layout. All fields little-endian u64 at fixed offsets.
typedef struct {
    uint64_t magic;          // 0x00, written by the bench
    uint64_t version;        // 0x08, written by the bench
    uint64_t pid;            // 0x10, written by the library when it starts counting
    uint64_t bytes;          // 0x18, bytes requested by malloc/calloc/realloc/memalign calls
    uint64_t calls[VCPUFREQ_MALLOC_CALL_COUNT]; // 0x20...0x47
    uint64_t armed;          // 0x48, set by the bench: record call stacks
    uint64_t recorded;       // 0x50, stacks recorded so far (slot = n % VCPUFREQ_MALLOC_STACK_SLOTS)
    uint64_t reserved[5];    // 0x58
    /// 0x80: return addresses, innermost first; a 0 ends a shorter stack.
    uint64_t stacks[VCPUFREQ_MALLOC_STACK_SLOTS][VCPUFREQ_MALLOC_STACK_DEPTH];
} vcpufreq_malloc_counters;

#endif
