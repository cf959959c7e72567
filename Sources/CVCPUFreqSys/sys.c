#define _GNU_SOURCE
#include "vcpufreq_sys.h"
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

pid_t vcpufreq_sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }

// MARK: - Scheduling

int vcpufreq_sys_sched_setattr(pid_t tid, const void *attr, unsigned int flags) {
    return (int)syscall(SYS_sched_setattr, tid, attr, flags);
}

int vcpufreq_sys_sched_getattr(pid_t tid, void *attr, unsigned int size, unsigned int flags) {
    return (int)syscall(SYS_sched_getattr, tid, attr, size, flags);
}

#define MASK_BYTES CPU_ALLOC_SIZE(VCPUFREQ_SYS_MAX_CPUS)

int vcpufreq_sys_sched_setaffinity(pid_t tid, const int32_t *cpus, int32_t count) {
    unsigned long storage[MASK_BYTES / sizeof(unsigned long)];
    cpu_set_t *set = (cpu_set_t *)storage;
    CPU_ZERO_S(MASK_BYTES, set);
    for (int32_t i = 0; i < count; i++) {
        if (cpus[i] < 0 || cpus[i] >= VCPUFREQ_SYS_MAX_CPUS) {
            errno = EINVAL;
            return -1;
        }
        CPU_SET_S((size_t)cpus[i], MASK_BYTES, set);
    }
    return sched_setaffinity(tid, MASK_BYTES, set);
}

int vcpufreq_sys_sched_getaffinity(pid_t tid, int32_t *cpus, int32_t capacity) {
    unsigned long storage[MASK_BYTES / sizeof(unsigned long)];
    cpu_set_t *set = (cpu_set_t *)storage;
    CPU_ZERO_S(MASK_BYTES, set);
    if (sched_getaffinity(tid, MASK_BYTES, set) != 0) return -1;
    int32_t found = 0;
    for (int32_t cpu = 0; cpu < VCPUFREQ_SYS_MAX_CPUS; cpu++) {
        if (CPU_ISSET_S((size_t)cpu, MASK_BYTES, set)) {
            if (found < capacity) cpus[found] = cpu;
            found++;
        }
    }
    return found;
}

int vcpufreq_sys_get_nice(pid_t tid, int32_t *nice) {
    errno = 0;
    int value = getpriority(PRIO_PROCESS, (id_t)tid);
    if (value == -1 && errno != 0) return -1;
    *nice = value;
    return 0;
}

int vcpufreq_sys_set_nice(pid_t tid, int32_t nice) {
    return setpriority(PRIO_PROCESS, (id_t)tid, nice);
}

// MARK: - Event descriptors

int vcpufreq_sys_eventfd(uint32_t initial, int nonblocking) {
    return eventfd(initial, EFD_CLOEXEC | (nonblocking ? EFD_NONBLOCK : 0));
}

int vcpufreq_sys_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

int vcpufreq_sys_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t token) {
    struct epoll_event event;
    memset(&event, 0, sizeof event);
    event.events = events;
    event.data.u64 = token;
    int kernel_op = op == VCPUFREQ_SYS_EPOLL_ADD ? EPOLL_CTL_ADD
                  : op == VCPUFREQ_SYS_EPOLL_MOD ? EPOLL_CTL_MOD
                  : EPOLL_CTL_DEL;
    return epoll_ctl(epfd, kernel_op, fd, &event);
}

int vcpufreq_sys_epoll_wait(int epfd, vcpufreq_sys_epoll_ready *ready, int capacity, int timeout_ms) {
    struct epoll_event events[VCPUFREQ_SYS_EPOLL_BATCH];
    if (capacity > VCPUFREQ_SYS_EPOLL_BATCH) capacity = VCPUFREQ_SYS_EPOLL_BATCH;
    if (capacity < 1) {
        errno = EINVAL;
        return -1;
    }
    int count = epoll_wait(epfd, events, capacity, timeout_ms);
    for (int i = 0; i < count; i++) {
        ready[i].token = events[i].data.u64;
        ready[i].events = events[i].events;
        ready[i].reserved = 0;
    }
    return count;
}

uint32_t vcpufreq_sys_epollin(void) { return EPOLLIN; }
uint32_t vcpufreq_sys_epollout(void) { return EPOLLOUT; }
uint32_t vcpufreq_sys_epollerr(void) { return EPOLLERR; }
uint32_t vcpufreq_sys_epollhup(void) { return EPOLLHUP; }
uint32_t vcpufreq_sys_epollet(void) { return EPOLLET; }

int vcpufreq_sys_timerfd_create(void) {
    return timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
}

int vcpufreq_sys_timerfd_arm(int fd, uint64_t deadline_ns) {
    struct itimerspec spec;
    memset(&spec, 0, sizeof spec);
    spec.it_value.tv_sec = (time_t)(deadline_ns / 1000000000u);
    spec.it_value.tv_nsec = (long)(deadline_ns % 1000000000u);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &spec, NULL);
}

static int fill_sigset(sigset_t *set, const int32_t *signals, int32_t count) {
    sigemptyset(set);
    for (int32_t i = 0; i < count; i++) {
        if (sigaddset(set, signals[i]) != 0) return -1;
    }
    return 0;
}

int vcpufreq_sys_block_signals(const int32_t *signals, int32_t count) {
    sigset_t set;
    if (fill_sigset(&set, signals, count) != 0) return -1;
    int error = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (error != 0) {
        errno = error;
        return -1;
    }
    return 0;
}

int vcpufreq_sys_signalfd(const int32_t *signals, int32_t count) {
    sigset_t set;
    if (fill_sigset(&set, signals, count) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

size_t vcpufreq_sys_signalfd_siginfo_size(void) { return sizeof(struct signalfd_siginfo); }

int vcpufreq_sys_flock_exclusive(int fd) { return flock(fd, LOCK_EX | LOCK_NB); }

int vcpufreq_sys_signal_pending(int signo) {
    sigset_t pending;
    if (sigpending(&pending) != 0) return -1;
    return sigismember(&pending, signo);
}

int vcpufreq_sys_memfd_create(const char *name, int allow_sealing) {
    return memfd_create(name, MFD_CLOEXEC | (allow_sealing ? MFD_ALLOW_SEALING : 0));
}

void *vcpufreq_sys_mmap_shared(int fd, size_t length, int writable) {
    int protection = PROT_READ | (writable ? PROT_WRITE : 0);
    void *address = mmap(NULL, length, protection, MAP_SHARED, fd, 0);
    return address == MAP_FAILED ? NULL : address;
}

uint64_t vcpufreq_sys_monotonic_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

// MARK: - Unix SOCK_SEQPACKET sockets

int vcpufreq_sys_seqpacket_socket(int nonblocking) {
    return socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), 0);
}

int vcpufreq_sys_seqpacket_pair(int32_t fds[2]) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) return -1;
    fds[0] = pair[0];
    fds[1] = pair[1];
    return 0;
}

static int fill_address(struct sockaddr_un *address, const char *path) {
    memset(address, 0, sizeof *address);
    address->sun_family = AF_UNIX;
    size_t length = strlen(path);
    if (length == 0 || length >= sizeof address->sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(address->sun_path, path, length + 1);
    return 0;
}

int vcpufreq_sys_bind_path(int fd, const char *path) {
    struct sockaddr_un address;
    if (fill_address(&address, path) != 0) return -1;
    return bind(fd, (struct sockaddr *)&address, sizeof address);
}

int vcpufreq_sys_connect_path(int fd, const char *path) {
    struct sockaddr_un address;
    if (fill_address(&address, path) != 0) return -1;
    return connect(fd, (struct sockaddr *)&address, sizeof address);
}

int vcpufreq_sys_accept(int fd) { return accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC); }

ssize_t vcpufreq_sys_send_with_fds(int fd, const void *data, size_t length,
                                   const int32_t *fds, int32_t fd_count, int nonblocking) {
    if (fd_count < 0 || fd_count > VCPUFREQ_SYS_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    union {
        char bytes[CMSG_SPACE(sizeof(int) * VCPUFREQ_SYS_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec vector = {.iov_base = (void *)data, .iov_len = length};
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    if (fd_count > 0) {
        memset(control.bytes, 0, sizeof control.bytes);
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)fd_count);
        struct cmsghdr *header = CMSG_FIRSTHDR(&message);
        header->cmsg_level = SOL_SOCKET;
        header->cmsg_type = SCM_RIGHTS;
        header->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)fd_count);
        memcpy(CMSG_DATA(header), fds, sizeof(int) * (size_t)fd_count);
    }
    return sendmsg(fd, &message, MSG_NOSIGNAL | (nonblocking ? MSG_DONTWAIT : 0));
}

ssize_t vcpufreq_sys_recv_with_fds(int fd, void *data, size_t capacity,
                                   int32_t *fds, int32_t fd_capacity, int32_t *fd_count,
                                   int32_t *truncation, int nonblocking) {
    *fd_count = 0;
    *truncation = 0;
    if (fd_capacity < 0 || fd_capacity > VCPUFREQ_SYS_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    union {
        char bytes[CMSG_SPACE(sizeof(int) * VCPUFREQ_SYS_MAX_FDS)];
        struct cmsghdr align;
    } control;
    struct iovec vector = {.iov_base = data, .iov_len = capacity};
    struct msghdr message;
    memset(&message, 0, sizeof message);
    message.msg_iov = &vector;
    message.msg_iovlen = 1;
    if (fd_capacity > 0) {
        message.msg_control = control.bytes;
        message.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)fd_capacity);
    }
    ssize_t received = recvmsg(fd, &message, MSG_CMSG_CLOEXEC | (nonblocking ? MSG_DONTWAIT : 0));
    if (received < 0) return -1;
    if (message.msg_flags & MSG_TRUNC) *truncation |= VCPUFREQ_SYS_TRUNC_DATA;
    if (message.msg_flags & MSG_CTRUNC) *truncation |= VCPUFREQ_SYS_TRUNC_CONTROL;
    if (message.msg_controllen == 0) return received;
    for (struct cmsghdr *header = CMSG_FIRSTHDR(&message); header != NULL;
         header = CMSG_NXTHDR(&message, header)) {
        if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
        size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        const unsigned char *payload = CMSG_DATA(header);
        for (size_t i = 0; i < count; i++) {
            int received_fd;
            memcpy(&received_fd, payload + i * sizeof(int), sizeof(int));
            if (*fd_count < fd_capacity) {
                fds[(*fd_count)++] = received_fd;
            } else {
                close(received_fd);
                *truncation |= VCPUFREQ_SYS_TRUNC_CONTROL;
            }
        }
    }
    return received;
}

int vcpufreq_sys_peer_credentials(int fd, int32_t *pid, uint32_t *uid, uint32_t *gid) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    *pid = credentials.pid;
    *uid = credentials.uid;
    *gid = credentials.gid;
    return 0;
}
