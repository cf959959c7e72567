// The one C shim of vcpufreq: what Swift cannot call directly (variadic
// syscall(), macros, gettid). Every function is prefixed vcpufreq_sys_ and
// returns the raw kernel result (-1 with errno set on failure).
#ifndef VCPUFREQ_SYS_H
#define VCPUFREQ_SYS_H

#include <stdint.h>
#include <sys/types.h>

/// The calling thread's kernel TID.
pid_t vcpufreq_sys_gettid(void);

#endif
