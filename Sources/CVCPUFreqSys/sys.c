#define _GNU_SOURCE
#include "vcpufreq_sys.h"
#include <sys/syscall.h>
#include <unistd.h>

pid_t vcpufreq_sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }
