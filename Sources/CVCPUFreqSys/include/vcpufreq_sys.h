// The one C shim of vcpufreq: what Swift cannot call directly (variadic
// syscall(), macros such as CPU_SET and CMSG_*, and the Linux-only calls
// that Swift's Glibc module does not export: epoll, eventfd, timerfd,
// signalfd, memfd, accept4, SO_PEERCRED). Every function is prefixed
// vcpufreq_sys_ and returns the raw kernel result (-1 with errno set on
// failure) unless its comment says otherwise. Only VCPUFreqLinux's
// Internals/Syscalls.swift calls these.
#ifndef VCPUFREQ_SYS_H
#define VCPUFREQ_SYS_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>

/// The calling thread's kernel TID.
pid_t vcpufreq_sys_gettid(void);

// MARK: - Scheduling

/// sched_setattr(2): `attr` points at a `struct sched_attr` whose `size`
/// field says how many bytes the kernel reads.
int vcpufreq_sys_sched_setattr(pid_t tid, const void *attr, unsigned int flags);
/// sched_getattr(2) into `size` bytes at `attr`.
int vcpufreq_sys_sched_getattr(pid_t tid, void *attr, unsigned int size, unsigned int flags);

/// The largest CPU id the affinity helpers handle, + 1 (matches
/// CPUList.maximumCPUID + 1; the mask lives on the stack: 1 KiB).
#define VCPUFREQ_SYS_MAX_CPUS 8192

/// sched_setaffinity(2) to the `count` CPU ids in `cpus`. An id outside
/// 0..<VCPUFREQ_SYS_MAX_CPUS fails with EINVAL.
int vcpufreq_sys_sched_setaffinity(pid_t tid, const int32_t *cpus, int32_t count);
/// sched_getaffinity(2): writes up to `capacity` ascending CPU ids and
/// returns how many CPUs the mask holds (which may exceed `capacity`).
int vcpufreq_sys_sched_getaffinity(pid_t tid, int32_t *cpus, int32_t capacity);

/// getpriority(PRIO_PROCESS, tid): on success returns 0 and stores the
/// nice value (getpriority's -1 is ambiguous; this resolves it with errno).
int vcpufreq_sys_get_nice(pid_t tid, int32_t *nice);
/// setpriority(PRIO_PROCESS, tid, nice).
int vcpufreq_sys_set_nice(pid_t tid, int32_t nice);

// MARK: - Event descriptors

/// eventfd(2), always EFD_CLOEXEC; `nonblocking` adds EFD_NONBLOCK.
int vcpufreq_sys_eventfd(uint32_t initial, int nonblocking);

/// epoll_create1(EPOLL_CLOEXEC).
int vcpufreq_sys_epoll_create(void);
enum {
    VCPUFREQ_SYS_EPOLL_ADD = 1,
    VCPUFREQ_SYS_EPOLL_DEL = 2,
    VCPUFREQ_SYS_EPOLL_MOD = 3,
};
/// epoll_ctl(2) with a 64-bit user token in epoll_data.u64.
int vcpufreq_sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token);
/// One ready descriptor, unpacked (struct epoll_event is packed on x86-64).
typedef struct {
    uint64_t token;
    uint32_t events;
    uint32_t reserved;
} vcpufreq_sys_epoll_ready;
/// The most events one wait returns; the kernel's array lives on the stack.
#define VCPUFREQ_SYS_EPOLL_BATCH 256
/// epoll_wait(2) into at most min(capacity, VCPUFREQ_SYS_EPOLL_BATCH) entries.
int vcpufreq_sys_epoll_wait(int epfd, vcpufreq_sys_epoll_ready *ready, int capacity, int timeout_ms);
uint32_t vcpufreq_sys_epollin(void);
uint32_t vcpufreq_sys_epollout(void);
uint32_t vcpufreq_sys_epollerr(void);
uint32_t vcpufreq_sys_epollhup(void);
uint32_t vcpufreq_sys_epollet(void);

/// timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC).
int vcpufreq_sys_timerfd_create(void);
/// timerfd_settime(TFD_TIMER_ABSTIME), one shot at `deadline_ns` on
/// CLOCK_MONOTONIC; 0 disarms.
int vcpufreq_sys_timerfd_arm(int fd, uint64_t deadline_ns);

/// pthread_sigmask(SIG_BLOCK) for the `count` signals. Returns 0 or -1/errno.
int vcpufreq_sys_block_signals(const int32_t *signals, int32_t count);
/// signalfd(-1, {signals}, SFD_NONBLOCK | SFD_CLOEXEC).
int vcpufreq_sys_signalfd(const int32_t *signals, int32_t count);
/// sizeof(struct signalfd_siginfo): one read returns a multiple of it.
size_t vcpufreq_sys_signalfd_siginfo_size(void);
/// Whether `signo` is pending for the calling thread or its process
/// (sigpending(2)): 1 or 0, -1/errno on failure. A blocked signal a
/// signalfd has not read yet is pending.
int vcpufreq_sys_signal_pending(int signo);

/// flock(fd, LOCK_EX | LOCK_NB) (Swift sees only `struct flock`).
int vcpufreq_sys_flock_exclusive(int fd);

/// memfd_create(name, MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0)).
int vcpufreq_sys_memfd_create(const char *name, int allow_sealing);
/// mmap(NULL, length, PROT_READ|PROT_WRITE (read only when !writable), MAP_SHARED, fd, 0).
/// Returns NULL with errno set on failure (not MAP_FAILED).
void *vcpufreq_sys_mmap_shared(int fd, size_t length, int writable);

/// CLOCK_MONOTONIC in nanoseconds (cannot fail on Linux).
uint64_t vcpufreq_sys_monotonic_ns(void);

// MARK: - Unix SOCK_SEQPACKET sockets

/// socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0).
int vcpufreq_sys_seqpacket_socket(int nonblocking);
/// socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0): fds[0], fds[1].
int vcpufreq_sys_seqpacket_pair(int32_t fds[2]);
/// bind(2) to a filesystem path (ENAMETOOLONG when it does not fit sun_path).
int vcpufreq_sys_bind_path(int fd, const char *path);
/// connect(2) to a filesystem path.
int vcpufreq_sys_connect_path(int fd, const char *path);
/// accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC).
int vcpufreq_sys_accept(int fd);

/// The most descriptors one message carries (the kernel's SCM_MAX_FD).
#define VCPUFREQ_SYS_MAX_FDS 253

/// sendmsg(2) of `length` bytes with `fd_count` descriptors (SCM_RIGHTS,
/// none when 0), MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0).
ssize_t vcpufreq_sys_send_with_fds(int fd, const void *data, size_t length,
                                   const int32_t *fds, int32_t fd_count, int nonblocking);

/// recvmsg(2) result flags, in `*truncation`.
enum {
    VCPUFREQ_SYS_TRUNC_DATA = 1,      // MSG_TRUNC: the datagram was longer than `capacity`
    VCPUFREQ_SYS_TRUNC_CONTROL = 2,   // MSG_CTRUNC, or more descriptors arrived than `fd_capacity`
};
/// recvmsg(2) with MSG_CMSG_CLOEXEC (| MSG_DONTWAIT when nonblocking):
/// data into `data`, descriptors into `fds` (at most `fd_capacity`, itself at
/// most VCPUFREQ_SYS_MAX_FDS). Descriptors beyond `fd_capacity` that the
/// kernel installed anyway (CMSG_SPACE rounds up) are closed here, never
/// leaked. On success returns the byte count and sets *fd_count and
/// *truncation; on failure no descriptor is open.
ssize_t vcpufreq_sys_recv_with_fds(int fd, void *data, size_t capacity,
                                   int32_t *fds, int32_t fd_capacity, int32_t *fd_count,
                                   int32_t *truncation, int nonblocking);

/// getsockopt(SO_PEERCRED).
int vcpufreq_sys_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid);

#endif
