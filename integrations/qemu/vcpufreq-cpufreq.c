/*
 * vcpufreq-cpufreq: the guest side of Linux's "qemu,virtual-cpufreq" driver
 * (drivers/cpufreq/virtual-cpufreq.c), served by the vcpufreq daemon.
 *
 * The device owns no state of its own: every register lives in the daemon,
 * which the device reaches over the vcpufreq protocol (vcpufreq_protocol.h,
 * docs/protocol.md). It is the reference integration for VMM authors and uses
 * nothing but QEMU's device API and the project's two C headers.
 *
 *   -device vcpufreq-cpufreq,socket=/run/vcpufreq.sock,vm-name=guest,base=0x0c000000
 *
 * At realize (after the machine built its vCPUs, so their host threads exist):
 *   1. HELLO, then ATTACH with the host thread id of every vCPU in vCPU order
 *      (the daemon sets scheduling hints on exactly those threads);
 *   2. MAP_SHARED: one memfd holding the shared page region and the read-only
 *      mirror of the upstream windows, and one doorbell eventfd per vCPU;
 *   3. the device space (vcpufreq_abi.h) at `base`:
 *        +0x000000  the mirror as a ROM device: loads are plain memory loads
 *                   (cur_perf on every tick never leaves the vCPU), stores are
 *                   forwarded as WRITE; perftbl_sel as a SYNC WRITE, because the
 *                   driver's next instruction loads perftbl_rd from the mirror;
 *        +0x800000  the shared page region, ordinary guest RAM from the memfd;
 *        +0x880000  the doorbells, each a 4-byte ioeventfd on the daemon's eventfd;
 *      everything else (the util-hint windows, the gaps, a store of another
 *      width to a doorbell) is forwarded: loads as READ, stores as posted WRITE.
 *
 * Accesses are forwarded with the index of the vCPU that executed them
 * (current_cpu), from that vCPU's own thread, one request on the socket at a
 * time, and without the BQL while the daemon answers (vcf_io_lock).
 *
 * When the daemon cannot be reached at realize, realize fails with the reason.
 * When it goes away later (socket closed, an ERROR, no reply within
 * timeout-ms) the device logs why once and carries on: stores are dropped; a
 * load of an upstream register reads what the daemon last answered for it
 * (what the mirror, which keeps its last contents, would show), any other
 * load reads 0. So cur_perf, read on every tick for frequency invariance,
 * never drops to 0 (which would freeze the guest's PELT clock on that CPU).
 * The guest never sees a fault.
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 */

#include "qemu/osdep.h"
#include <sys/socket.h>
#include <sys/un.h>
#include "qapi/error.h"
#include "qemu/bswap.h"
#include "qemu/error-report.h"
#include "qemu/event_notifier.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/thread.h"
#include "qom/object.h"
#include "exec/address-spaces.h"
#include "exec/memory.h"
#include "hw/core/cpu.h"
#include "hw/misc/vcpufreq-cpufreq.h"
#include "hw/qdev-properties.h"
#include "hw/sysbus.h"
#include "system/system.h"
#include "vcpufreq_abi.h"
#include "vcpufreq_protocol.h"

OBJECT_DECLARE_SIMPLE_TYPE(VCPUFreqCPUFreqState, VCPUFREQ_CPUFREQ)

#define VCF_BASE_FROM_DAEMON UINT64_MAX
#define VCF_MAX_FDS 253 /* the kernel's SCM_MAX_FD */

/* What one executing vCPU sent to the daemon (the daemon counts its side). */
typedef struct VCPUFreqVCPUCounts {
    uint64_t reads;         /* forwarded loads */
    uint64_t writes;        /* forwarded stores, posted and sync */
    uint64_t set_perf_own;  /* set_perf stores to its own window */
    uint64_t set_perf_other; /* set_perf stores to another vCPU's window */
} VCPUFreqVCPUCounts;

/* The upstream registers of one window a load can read (cur_perf ... perf_domain). */
#define VCF_UP_REGS (VCPUFREQ_UP_REG_PERF_DOMAIN / VCPUFREQ_UP_REG_WIDTH + 1)

struct VCPUFreqCPUFreqState {
    SysBusDevice parent_obj;

    /* properties */
    char *socket_path;
    char *vm_name;
    char *profile;
    uint64_t base;
    uint32_t timeout_ms;
    bool map_shared;
    bool mirror_wanted;
    bool doorbells_wanted;

    /* connection (after realize, under io_lock: see vcf_io_lock) */
    QemuMutex io_lock;
    int sock;             /* -1 once the daemon is gone */
    uint32_t next_id;
    uint8_t *rx;          /* VCPUFREQ_PROTO_MAX_DAEMON_MESSAGE bytes */
    uint32_t vcpus;
    uint32_t vm_id;

    /* the device space */
    MemoryRegion space;   /* whole span; forwards what no subregion serves */
    MemoryRegion mirror;  /* ROM device over the memfd's mirror */
    MemoryRegion page;    /* RAM over the memfd's shared page region */
    MemoryRegion doorbell;
    EventNotifier *kicks;
    uint32_t doorbell_count;
    bool mirror_mapped;

    /* counters (QOM properties, and the summary at exit) */
    VCPUFreqVCPUCounts *counts;
    uint32_t (*last_answer)[VCF_UP_REGS]; /* per window: the daemon's last answer per register */
    uint64_t forwarded_reads;
    uint64_t forwarded_writes;
    uint64_t sync_writes;
    uint64_t invalid_replies;
    uint64_t failures;      /* accesses answered locally because the daemon was gone */
    uint64_t no_vcpu;       /* accesses with no executing vCPU (debugger, DMA) */
    uint64_t foreign_thread; /* accesses of a vCPU handled off its own thread (never, with MTTCG or KVM) */
    Notifier exit_notifier;
};

/* ---- messages ---------------------------------------------------------- */

typedef struct VCFMessage {
    uint8_t data[VCPUFREQ_PROTO_MAX_CLIENT_MESSAGE];
    size_t len;
} VCFMessage;

static void vcf_msg_start(VCFMessage *m, uint16_t type, uint16_t flags, uint32_t id)
{
    memset(m->data, 0, VCPUFREQ_PROTO_HEADER_SIZE);
    stw_le_p(m->data + 0, type);
    stw_le_p(m->data + 2, flags);
    stl_le_p(m->data + 8, id);
    m->len = VCPUFREQ_PROTO_HEADER_SIZE;
}

static void vcf_put16(VCFMessage *m, uint16_t v) { stw_le_p(m->data + m->len, v); m->len += 2; }
static void vcf_put32(VCFMessage *m, uint32_t v) { stl_le_p(m->data + m->len, v); m->len += 4; }
static void vcf_put64(VCFMessage *m, uint64_t v) { stq_le_p(m->data + m->len, v); m->len += 8; }

/* Strings are a u16 byte count and the bytes; callers bound the length. */
static void vcf_put_string(VCFMessage *m, const char *s)
{
    size_t n = strlen(s);
    vcf_put16(m, n);
    memcpy(m->data + m->len, s, n);
    m->len += n;
}

static void vcf_msg_finish(VCFMessage *m)
{
    stl_le_p(m->data + 4, m->len);
}

/* A received daemon message, read field by field with bounds checks. */
typedef struct VCFReply {
    const uint8_t *data;
    size_t len;
    size_t pos;
    bool short_read;
} VCFReply;

static uint16_t vcf_get16(VCFReply *r)
{
    if (r->pos + 2 > r->len) { r->short_read = true; return 0; }
    r->pos += 2;
    return lduw_le_p(r->data + r->pos - 2);
}

static uint32_t vcf_get32(VCFReply *r)
{
    if (r->pos + 4 > r->len) { r->short_read = true; return 0; }
    r->pos += 4;
    return ldl_le_p(r->data + r->pos - 4);
}

static uint64_t vcf_get64(VCFReply *r)
{
    if (r->pos + 8 > r->len) { r->short_read = true; return 0; }
    r->pos += 8;
    return ldq_le_p(r->data + r->pos - 8);
}

/* A string of the reply as a new C string (printable for logs). */
static char *vcf_get_string(VCFReply *r)
{
    uint16_t n = vcf_get16(r);
    if (r->short_read || r->pos + n > r->len || n > VCPUFREQ_PROTO_MAX_STRING) {
        r->short_read = true;
        return g_strdup("");
    }
    char *s = g_strndup((const char *)r->data + r->pos, n);
    r->pos += n;
    for (char *c = s; *c; c++) {
        if ((unsigned char)*c < 0x20) {
            *c = '?';
        }
    }
    return s;
}

static const char *vcf_error_name(uint32_t code)
{
    switch (code) {
    case VCPUFREQ_ERR_MALFORMED: return "malformed";
    case VCPUFREQ_ERR_UNSUPPORTED_VERSION: return "unsupported_version";
    case VCPUFREQ_ERR_UNKNOWN_TYPE: return "unknown_type";
    case VCPUFREQ_ERR_INVALID_STATE: return "invalid_state";
    case VCPUFREQ_ERR_FOREIGN_THREAD: return "foreign_thread";
    case VCPUFREQ_ERR_UNKNOWN_PROFILE: return "unknown_profile";
    case VCPUFREQ_ERR_PERMISSION_DENIED: return "permission_denied";
    case VCPUFREQ_ERR_UNEXPECTED_DESCRIPTORS: return "unexpected_descriptors";
    case VCPUFREQ_ERR_RESOURCES: return "resources";
    case VCPUFREQ_ERR_DUPLICATE_VM: return "duplicate_vm";
    default: return "unknown error";
    }
}

/* ---- the connection ---------------------------------------------------- */

/* The daemon is gone: log why once, answer every later access locally. */
static void vcf_lost(VCPUFreqCPUFreqState *s, const char *why)
{
    if (s->sock < 0) {
        return;
    }
    close(s->sock);
    s->sock = -1;
    error_report("vcpufreq-cpufreq: lost the vcpufreq daemon at %s: %s; from now on stores are "
                 "dropped, upstream registers read their last values (the mirror and the shared page "
                 "keep theirs) and other loads read 0", s->socket_path, why);
}

static bool vcf_send(VCPUFreqCPUFreqState *s, VCFMessage *m, Error **errp)
{
    ssize_t n;

    vcf_msg_finish(m);
    do {
        n = send(s->sock, m->data, m->len, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        error_setg_errno(errp, errno, "sending to the daemon failed");
        return false;
    }
    return true;
}

/*
 * Receives one daemon message into s->rx, with up to max_fds descriptors
 * (the caller owns them; extra ones are closed). Returns its length, or -1.
 */
static ssize_t vcf_recv(VCPUFreqCPUFreqState *s, int *fds, size_t max_fds, size_t *nfds, Error **errp)
{
    union {
        struct cmsghdr align;
        char buf[CMSG_SPACE(sizeof(int) * VCF_MAX_FDS)];
    } control;
    struct iovec iov = { .iov_base = s->rx, .iov_len = VCPUFREQ_PROTO_MAX_DAEMON_MESSAGE };
    struct msghdr msg = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof(control.buf),
    };
    ssize_t n;
    struct cmsghdr *c;

    *nfds = 0;
    do {
        n = recvmsg(s->sock, &msg, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < count; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
            if (*nfds < max_fds) {
                fds[(*nfds)++] = fd;
            } else {
                close(fd);
            }
        }
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            error_setg(errp, "no reply within %" PRIu32 " ms", s->timeout_ms);
        } else {
            error_setg_errno(errp, errno, "receiving from the daemon failed");
        }
        return -1;
    }
    if (n == 0) {
        error_setg(errp, "the daemon closed the connection");
        return -1;
    }
    if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
        error_setg(errp, "a daemon message was cut short (%zd bytes, flags 0x%x)", n, msg.msg_flags);
        return -1;
    }
    return n;
}

static void vcf_close_fds(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        close(fds[i]);
    }
}

/*
 * Waits for the reply to request `id`: a message of type `want`, checked
 * against its header. An ERROR (the daemon closes the connection after it)
 * becomes errp with its code and message. On success r reads the body.
 */
static bool vcf_await(VCPUFreqCPUFreqState *s, uint32_t id, uint16_t want, VCFReply *r,
                      int *fds, size_t max_fds, size_t *nfds, Error **errp)
{
    ssize_t n = vcf_recv(s, fds, max_fds, nfds, errp);
    if (n < 0) {
        return false;
    }
    if (n < VCPUFREQ_PROTO_HEADER_SIZE || ldl_le_p(s->rx + 4) != (uint32_t)n) {
        error_setg(errp, "a daemon message of %zd bytes has a bad header", n);
        goto fail;
    }
    uint16_t type = lduw_le_p(s->rx);
    *r = (VCFReply) { .data = s->rx, .len = n, .pos = VCPUFREQ_PROTO_HEADER_SIZE };
    if (type == VCPUFREQ_MSG_ERROR) {
        uint32_t code = vcf_get32(r);
        uint16_t failed = vcf_get16(r);
        vcf_get16(r);
        g_autofree char *text = vcf_get_string(r);
        error_setg(errp, "the daemon refused message 0x%02x: %s (%" PRIu32 "): %s",
                   failed, vcf_error_name(code), code, text);
        goto fail;
    }
    if (type != want || ldl_le_p(s->rx + 8) != id) {
        error_setg(errp, "expected message 0x%02x for request %" PRIu32 ", got 0x%02x for %" PRIu32,
                   want, id, type, ldl_le_p(s->rx + 8));
        goto fail;
    }
    return true;
fail:
    vcf_close_fds(fds, *nfds);
    *nfds = 0;
    return false;
}

/* ---- forwarding guest accesses ----------------------------------------- */

/* The executing vCPU's index, or -1 for an access no vCPU made. */
static int vcf_executing_vcpu(VCPUFreqCPUFreqState *s)
{
    if (!current_cpu || current_cpu->cpu_index < 0 || (uint32_t)current_cpu->cpu_index >= s->vcpus) {
        s->no_vcpu++;
        return -1;
    }
    /* The daemon hints the thread ATTACH named for this vCPU: it must be the one running it. */
    if (current_cpu->thread_id != qemu_get_thread_id()) {
        s->foreign_thread++;
    }
    return current_cpu->cpu_index;
}

/* The last-answer slot of an upstream register load, or NULL for any other load. */
static uint32_t *vcf_answer_slot(VCPUFreqCPUFreqState *s, hwaddr offset, unsigned size)
{
    hwaddr window = offset / VCPUFREQ_UP_WINDOW_SIZE, reg = offset % VCPUFREQ_UP_WINDOW_SIZE;

    if (offset >= VCPUFREQ_UTIL_HINT_OFFSET || window >= s->vcpus || size != VCPUFREQ_UP_REG_WIDTH
        || reg % VCPUFREQ_UP_REG_WIDTH || reg / VCPUFREQ_UP_REG_WIDTH >= VCF_UP_REGS) {
        return NULL;
    }
    return &s->last_answer[window][reg / VCPUFREQ_UP_REG_WIDTH];
}

/*
 * The round trip to the daemon runs without the BQL (as hw/remote's proxy
 * device does): a vCPU waiting for the daemon must stop neither the other
 * vCPUs nor the main loop's timers and interrupts (without the mirror, 16
 * vCPUs' ticks on a 2-CPU host starve the guest into RCU stalls otherwise).
 * io_lock keeps one request on the socket at a time and guards everything
 * forwarding touches; it is never held together with the BQL.
 */
static bool vcf_io_lock(VCPUFreqCPUFreqState *s)
{
    bool had_bql = bql_locked();

    if (had_bql) {
        bql_unlock();
    }
    qemu_mutex_lock(&s->io_lock);
    return had_bql;
}

static void vcf_io_unlock(VCPUFreqCPUFreqState *s, bool had_bql)
{
    qemu_mutex_unlock(&s->io_lock);
    if (had_bql) {
        bql_lock();
    }
}

/* A guest load the daemon answers (io_lock held). */
static uint64_t vcf_forward_read_locked(VCPUFreqCPUFreqState *s, hwaddr offset, unsigned size)
{
    VCFMessage m;
    VCFReply r;
    size_t nfds;
    Error *err = NULL;
    int vcpu = vcf_executing_vcpu(s);
    uint32_t *answer = vcf_answer_slot(s, offset, size);

    if (vcpu < 0) {
        return answer ? *answer : 0;
    }
    if (s->sock < 0) {
        s->failures++;
        return answer ? *answer : 0;
    }
    uint32_t id = s->next_id++;
    vcf_msg_start(&m, VCPUFREQ_MSG_READ, 0, id);
    vcf_put32(&m, vcpu);
    vcf_put32(&m, size);
    vcf_put64(&m, offset);
    if (!vcf_send(s, &m, &err) || !vcf_await(s, id, VCPUFREQ_MSG_READ_OK, &r, NULL, 0, &nfds, &err)) {
        vcf_lost(s, error_get_pretty(err));
        error_free(err);
        s->failures++;
        return answer ? *answer : 0;
    }
    uint64_t value = vcf_get64(&r);
    uint32_t invalid = vcf_get32(&r);
    s->forwarded_reads++;
    s->counts[vcpu].reads++;
    if (invalid) {
        s->invalid_replies++;
    }
    if (answer) {
        *answer = value;
    }
    return value;
}

/* A guest store for the daemon (io_lock held). */
static void vcf_forward_write_locked(VCPUFreqCPUFreqState *s, hwaddr offset, uint64_t value, unsigned size,
                                     bool sync)
{
    VCFMessage m;
    VCFReply r;
    size_t nfds;
    Error *err = NULL;
    int vcpu = vcf_executing_vcpu(s);

    if (vcpu < 0) {
        return;
    }
    if (offset < VCPUFREQ_UTIL_HINT_OFFSET
        && offset % VCPUFREQ_UP_WINDOW_SIZE == VCPUFREQ_UP_REG_SET_PERF) {
        if (offset / VCPUFREQ_UP_WINDOW_SIZE == (hwaddr)vcpu) {
            s->counts[vcpu].set_perf_own++;
        } else {
            s->counts[vcpu].set_perf_other++;
        }
    }
    if (s->sock < 0) {
        s->failures++;
        return;
    }
    uint32_t id = s->next_id++;
    vcf_msg_start(&m, VCPUFREQ_MSG_WRITE, sync ? VCPUFREQ_MSG_FLAG_SYNC : 0, id);
    vcf_put32(&m, vcpu);
    vcf_put32(&m, size);
    vcf_put64(&m, offset);
    vcf_put64(&m, value);
    if (!vcf_send(s, &m, &err)
        || (sync && !vcf_await(s, id, VCPUFREQ_MSG_WRITE_OK, &r, NULL, 0, &nfds, &err))) {
        vcf_lost(s, error_get_pretty(err));
        error_free(err);
        s->failures++;
        return;
    }
    s->forwarded_writes++;
    s->counts[vcpu].writes++;
    if (sync) {
        s->sync_writes++;
        if (vcf_get32(&r)) {
            s->invalid_replies++;
        }
    }
}

static uint64_t vcf_forward_read(VCPUFreqCPUFreqState *s, hwaddr offset, unsigned size)
{
    bool had_bql = vcf_io_lock(s);
    uint64_t value = vcf_forward_read_locked(s, offset, size);

    vcf_io_unlock(s, had_bql);
    return value;
}

static void vcf_forward_write(VCPUFreqCPUFreqState *s, hwaddr offset, uint64_t value, unsigned size, bool sync)
{
    bool had_bql = vcf_io_lock(s);

    vcf_forward_write_locked(s, offset, value, size, sync);
    vcf_io_unlock(s, had_bql);
}

/* Everything in the device space that no subregion serves. */
static uint64_t vcf_space_read(void *opaque, hwaddr addr, unsigned size)
{
    return vcf_forward_read(opaque, addr, size);
}

static void vcf_space_write(void *opaque, hwaddr addr, uint64_t value, unsigned size)
{
    vcf_forward_write(opaque, addr, value, size, false);
}

/*
 * Stores to the mirrored upstream windows (loads never get here in ROMD
 * mode). perftbl_sel waits for the daemon, which rewrites perftbl_rd in the
 * mirror before it replies.
 */
static void vcf_mirror_write(void *opaque, hwaddr addr, uint64_t value, unsigned size)
{
    bool sync = addr % VCPUFREQ_UP_WINDOW_SIZE == VCPUFREQ_UP_REG_PERFTBL_SEL;
    vcf_forward_write(opaque, VCPUFREQ_UPSTREAM_OFFSET + addr, value, size, sync);
}

static uint64_t vcf_mirror_read(void *opaque, hwaddr addr, unsigned size)
{
    return vcf_forward_read(opaque, VCPUFREQ_UPSTREAM_OFFSET + addr, size);
}

/* A doorbell store the ioeventfd did not take (another width): still a kick for the daemon. */
static void vcf_doorbell_write(void *opaque, hwaddr addr, uint64_t value, unsigned size)
{
    vcf_forward_write(opaque, VCPUFREQ_DOORBELL_OFFSET + addr, value, size, false);
}

static uint64_t vcf_doorbell_read(void *opaque, hwaddr addr, unsigned size)
{
    return vcf_forward_read(opaque, VCPUFREQ_DOORBELL_OFFSET + addr, size);
}

/* Every width and alignment reaches the daemon, which answers bad ones (docs/abi.md). */
#define VCF_ACCESS_RULES \
    .endianness = DEVICE_LITTLE_ENDIAN, \
    .valid = { .min_access_size = 1, .max_access_size = 8, .unaligned = true }, \
    .impl = { .min_access_size = 1, .max_access_size = 8, .unaligned = true }

static const MemoryRegionOps vcf_space_ops = {
    .read = vcf_space_read, .write = vcf_space_write, VCF_ACCESS_RULES,
};
static const MemoryRegionOps vcf_mirror_ops = {
    .read = vcf_mirror_read, .write = vcf_mirror_write, VCF_ACCESS_RULES,
};
static const MemoryRegionOps vcf_doorbell_ops = {
    .read = vcf_doorbell_read, .write = vcf_doorbell_write, VCF_ACCESS_RULES,
};

/* ---- realize: attach, map ---------------------------------------------- */

static bool vcf_connect(VCPUFreqCPUFreqState *s, Error **errp)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    struct timeval tv = { .tv_sec = s->timeout_ms / 1000, .tv_usec = (s->timeout_ms % 1000) * 1000 };

    if (strlen(s->socket_path) >= sizeof(addr.sun_path)) {
        error_setg(errp, "socket path %s is too long", s->socket_path);
        return false;
    }
    strcpy(addr.sun_path, s->socket_path);
    s->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (s->sock < 0) {
        error_setg_errno(errp, errno, "socket(AF_UNIX, SOCK_SEQPACKET)");
        return false;
    }
    if (s->timeout_ms) {
        setsockopt(s->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(s->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (connect(s->sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        error_setg_errno(errp, errno, "cannot connect to the vcpufreq daemon at %s "
                         "(start it with: vcpufreq serve --topology FILE --socket %s)",
                         s->socket_path, s->socket_path);
        close(s->sock);
        s->sock = -1;
        return false;
    }
    return true;
}

static bool vcf_hello(VCPUFreqCPUFreqState *s, Error **errp)
{
    VCFMessage m;
    VCFReply r;
    size_t nfds;
    uint32_t id = s->next_id++;

    vcf_msg_start(&m, VCPUFREQ_MSG_HELLO, 0, id);
    vcf_put32(&m, VCPUFREQ_PROTO_MAGIC);
    vcf_put16(&m, VCPUFREQ_PROTO_VERSION);
    vcf_put16(&m, VCPUFREQ_PROTO_VERSION);
    vcf_put32(&m, 0);
    vcf_put_string(&m, "qemu " TYPE_VCPUFREQ_CPUFREQ);
    if (!vcf_send(s, &m, errp) || !vcf_await(s, id, VCPUFREQ_MSG_HELLO_OK, &r, NULL, 0, &nfds, errp)) {
        return false;
    }
    uint16_t version = vcf_get16(&r);
    vcf_get16(&r);
    vcf_get32(&r);
    uint32_t max_vcpus = vcf_get32(&r);
    g_autofree char *daemon_version = vcf_get_string(&r);
    if (r.short_read || version != VCPUFREQ_PROTO_VERSION) {
        error_setg(errp, "HELLO_OK is malformed or speaks version %u", version);
        return false;
    }
    if (max_vcpus < s->vcpus) {
        error_setg(errp, "the daemon (%s) takes at most %" PRIu32 " vCPUs per VM, this machine has %" PRIu32,
                   daemon_version, max_vcpus, s->vcpus);
        return false;
    }
    return true;
}

/*
 * The host thread id of every vCPU, in vCPU order. Each must be a thread of
 * its own: single-threaded TCG runs every vCPU on one thread, and a hint for
 * one vCPU would land on all of them (the daemon refuses a repeated TID).
 */
static bool vcf_vcpu_threads(VCPUFreqCPUFreqState *s, uint32_t *tids, Error **errp)
{
    for (uint32_t i = 0; i < s->vcpus; i++) {
        CPUState *cpu = qemu_get_cpu(i);
        if (!cpu || !cpu->created || cpu->thread_id <= 0) {
            error_setg(errp, "vCPU %" PRIu32 " has no host thread yet", i);
            return false;
        }
        tids[i] = cpu->thread_id;
        for (uint32_t j = 0; j < i; j++) {
            if (tids[j] == tids[i]) {
                error_setg(errp, "vCPUs %" PRIu32 " and %" PRIu32 " share host thread %" PRIu32
                           ": use one thread per vCPU (-accel tcg,thread=multi, or KVM)", j, i, tids[i]);
                return false;
            }
        }
    }
    return true;
}

static bool vcf_attach(VCPUFreqCPUFreqState *s, uint64_t *daemon_base, Error **errp)
{
    VCFMessage m;
    VCFReply r;
    size_t nfds;
    g_autofree uint32_t *tids = g_new0(uint32_t, s->vcpus);
    uint32_t id;

    if (!vcf_vcpu_threads(s, tids, errp)) {
        return false;
    }
    id = s->next_id++;
    vcf_msg_start(&m, VCPUFREQ_MSG_ATTACH, 0, id);
    vcf_put_string(&m, s->vm_name);
    vcf_put_string(&m, s->profile ? s->profile : "");
    vcf_put32(&m, s->vcpus);
    vcf_put32(&m, 0);
    for (uint32_t i = 0; i < s->vcpus; i++) {
        vcf_put32(&m, tids[i]);
    }
    if (!vcf_send(s, &m, errp) || !vcf_await(s, id, VCPUFREQ_MSG_ATTACH_OK, &r, NULL, 0, &nfds, errp)) {
        return false;
    }
    s->vm_id = vcf_get32(&r);
    uint32_t vcpus = vcf_get32(&r);
    *daemon_base = vcf_get64(&r);
    g_autofree char *profile = vcf_get_string(&r);
    g_autofree char *actuators = vcf_get_string(&r);
    if (r.short_read || vcpus != s->vcpus) {
        error_setg(errp, "ATTACH_OK is malformed or has %" PRIu32 " vCPUs for %" PRIu32, vcpus, s->vcpus);
        return false;
    }
    g_autofree char *list = g_strdup_printf("%" PRIu32, tids[0]);
    for (uint32_t i = 1; i < s->vcpus; i++) {
        char *longer = g_strdup_printf("%s,%" PRIu32, list, tids[i]);
        g_free(list);
        list = longer;
    }
    info_report("vcpufreq-cpufreq: VM '%s' attached to %s as id %" PRIu32 " (profile '%s', %s); "
                "vCPU threads %s", s->vm_name, s->socket_path, s->vm_id, profile, actuators, list);
    return true;
}

/* Refuses a layout that would map past the memfd or elsewhere than docs/abi.md says. */
static bool vcf_check_layout(VCPUFreqCPUFreqState *s, int memfd, uint64_t memfd_size, uint64_t page_offset,
                             uint64_t page_size, uint64_t page_device_offset, uint64_t mirror_offset,
                             uint64_t mirror_size, uint64_t mirror_device_offset, uint64_t doorbell_device_offset,
                             uint32_t doorbell_stride, Error **errp)
{
    struct stat st;

    if (fstat(memfd, &st) < 0 || (uint64_t)st.st_size < memfd_size) {
        error_setg(errp, "SHARED_OK: the memfd is smaller than memfd_size %" PRIu64, memfd_size);
        return false;
    }
    if (page_size < VCPUFREQ_SP_REGION_SIZE(s->vcpus) || page_offset > memfd_size
        || page_size > memfd_size - page_offset || page_device_offset != VCPUFREQ_SHARED_PAGE_OFFSET
        || page_offset % qemu_real_host_page_size() || page_size % qemu_real_host_page_size()) {
        error_setg(errp, "SHARED_OK: shared page of %" PRIu64 " bytes at %" PRIu64 " (device +0x%" PRIx64
                   ") does not fit", page_size, page_offset, page_device_offset);
        return false;
    }
    if (mirror_size && (mirror_size != (uint64_t)VCPUFREQ_UP_WINDOW_SIZE * s->vcpus || mirror_offset > memfd_size
                        || mirror_size > memfd_size - mirror_offset
                        || mirror_device_offset != VCPUFREQ_UPSTREAM_OFFSET
                        || mirror_offset % qemu_real_host_page_size())) {
        error_setg(errp, "SHARED_OK: mirror of %" PRIu64 " bytes at %" PRIu64 " does not cover %" PRIu32
                   " upstream windows", mirror_size, mirror_offset, s->vcpus);
        return false;
    }
    if (doorbell_device_offset != VCPUFREQ_DOORBELL_OFFSET || doorbell_stride != VCPUFREQ_DOORBELL_STRIDE) {
        error_setg(errp, "SHARED_OK: doorbells at +0x%" PRIx64 " with stride %" PRIu32, doorbell_device_offset,
                   doorbell_stride);
        return false;
    }
    return true;
}

static bool vcf_map_shared(VCPUFreqCPUFreqState *s, Error **errp)
{
    VCFMessage m;
    VCFReply r;
    int fds[VCF_MAX_FDS];
    size_t nfds;
    int memfd = -1;
    uint32_t flags = (s->mirror_wanted ? VCPUFREQ_MAP_MIRROR : 0) | (s->doorbells_wanted ? VCPUFREQ_MAP_DOORBELLS : 0);
    uint32_t id = s->next_id++;
    bool ok = false;

    vcf_msg_start(&m, VCPUFREQ_MSG_MAP_SHARED, 0, id);
    vcf_put32(&m, flags);
    if (!vcf_send(s, &m, errp) || !vcf_await(s, id, VCPUFREQ_MSG_SHARED_OK, &r, fds, 1, &nfds, errp)) {
        return false;
    }
    uint64_t memfd_size = vcf_get64(&r), page_offset = vcf_get64(&r), page_size = vcf_get64(&r);
    uint64_t page_device_offset = vcf_get64(&r), mirror_offset = vcf_get64(&r), mirror_size = vcf_get64(&r);
    uint64_t mirror_device_offset = vcf_get64(&r), doorbell_device_offset = vcf_get64(&r);
    uint32_t doorbell_stride = vcf_get32(&r), doorbell_count = vcf_get32(&r), doorbell_messages = vcf_get32(&r);
    uint32_t page_kind = vcf_get32(&r);   /* HELLO asked for no BPF-map page: always the memfd */
    if (r.short_read || nfds != 1 || page_kind != VCPUFREQ_PAGE_KIND_MEMFD) {
        error_setg(errp, "SHARED_OK is malformed, carries %zu descriptors or page kind %" PRIu32
                   " (not the memfd HELLO implied)", nfds, page_kind);
        vcf_close_fds(fds, nfds);
        return false;
    }
    memfd = fds[0];
    if (!vcf_check_layout(s, memfd, memfd_size, page_offset, page_size, page_device_offset, mirror_offset,
                          mirror_size, mirror_device_offset, doorbell_device_offset, doorbell_stride, errp)) {
        goto out;
    }
    if (doorbell_count != (s->doorbells_wanted ? s->vcpus : 0)) {
        error_setg(errp, "SHARED_OK offers %" PRIu32 " doorbells for %" PRIu32 " vCPUs", doorbell_count, s->vcpus);
        goto out;
    }

    /* The doorbells: each DOORBELLS message carries the eventfds of a run of them. */
    s->kicks = g_new0(EventNotifier, doorbell_count);
    for (uint32_t msg = 0, received = 0; msg < doorbell_messages; msg++) {
        if (!vcf_await(s, id, VCPUFREQ_MSG_DOORBELLS, &r, fds, VCF_MAX_FDS, &nfds, errp)) {
            goto out;
        }
        uint32_t first = vcf_get32(&r), count = vcf_get32(&r);
        if (r.short_read || first != received || count != nfds || count > doorbell_count - received) {
            error_setg(errp, "DOORBELLS %" PRIu32 "+%" PRIu32 " with %zu descriptors after %" PRIu32,
                       first, count, nfds, received);
            vcf_close_fds(fds, nfds);
            goto out;
        }
        for (uint32_t i = 0; i < count; i++) {
            event_notifier_init_fd(&s->kicks[first + i], fds[i]);
        }
        received += count;
        s->doorbell_count = received;
    }
    if (s->doorbell_count != doorbell_count) {
        error_setg(errp, "%" PRIu32 " of %" PRIu32 " doorbell descriptors arrived", s->doorbell_count, doorbell_count);
        goto out;
    }

    /* The shared page: guest RAM both sides see. Each RAMBlock owns the descriptor it is given. */
    if (!memory_region_init_ram_from_fd(&s->page, OBJECT(s), "vcpufreq-cpufreq.page", page_size, RAM_SHARED,
                                        dup(memfd), page_offset, errp)) {
        goto out;
    }
    memory_region_add_subregion_overlap(&s->space, page_device_offset, &s->page, 1);

    /* The mirror: loads from the daemon's memory, stores forwarded. */
    if (mirror_size) {
        if (!memory_region_init_rom_device_from_fd(&s->mirror, OBJECT(s), &vcf_mirror_ops, s,
                                                   "vcpufreq-cpufreq.mirror", mirror_size, dup(memfd),
                                                   mirror_offset, errp)) {
            goto out;
        }
        memory_region_add_subregion_overlap(&s->space, mirror_device_offset, &s->mirror, 1);
        s->mirror_mapped = true;
    }

    /* The doorbells: a 4-byte store completes as an eventfd signal, no callback. */
    memory_region_init_io(&s->doorbell, OBJECT(s), &vcf_doorbell_ops, s, "vcpufreq-cpufreq.doorbells",
                          VCPUFREQ_TOTAL_SPAN - VCPUFREQ_DOORBELL_OFFSET);
    s->doorbell.disable_reentrancy_guard = true;   /* as the space's */
    for (uint32_t i = 0; i < s->doorbell_count; i++) {
        memory_region_add_eventfd(&s->doorbell, (hwaddr)i * doorbell_stride, 4, false, 0, &s->kicks[i]);
    }
    memory_region_add_subregion_overlap(&s->space, doorbell_device_offset, &s->doorbell, 1);
    ok = true;
out:
    close(memfd);
    return ok;
}

static void vcf_exit_summary(Notifier *n, void *data)
{
    VCPUFreqCPUFreqState *s = container_of(n, VCPUFreqCPUFreqState, exit_notifier);

    info_report("vcpufreq-cpufreq: forwarded %" PRIu64 " loads, %" PRIu64 " stores (%" PRIu64 " sync), %"
                PRIu64 " invalid replies, %" PRIu64 " answered locally with the daemon gone, %" PRIu64
                " with no vCPU, %" PRIu64 " off the vCPU's own thread; mirror %s", s->forwarded_reads,
                s->forwarded_writes, s->sync_writes, s->invalid_replies, s->failures, s->no_vcpu,
                s->foreign_thread, s->mirror_mapped ? "mapped" : "not mapped");
    for (uint32_t i = 0; i < s->vcpus; i++) {
        VCPUFreqVCPUCounts *c = &s->counts[i];
        info_report("vcpufreq-cpufreq: vCPU %" PRIu32 ": loads %" PRIu64 " stores %" PRIu64 " set_perf own %"
                    PRIu64 " other %" PRIu64, i, c->reads, c->writes, c->set_perf_own, c->set_perf_other);
    }
}

static void vcf_realize(DeviceState *dev, Error **errp)
{
    VCPUFreqCPUFreqState *s = VCPUFREQ_CPUFREQ(dev);
    SysBusDevice *sbd = SYS_BUS_DEVICE(dev);
    uint64_t daemon_base = 0;
    CPUState *cpu;
    MemoryRegionSection taken;

    if (!s->socket_path) {
        error_setg(errp, "socket=PATH (the vcpufreq daemon's socket) is required");
        return;
    }
    if (!s->vm_name) {
        s->vm_name = g_strdup_printf("qemu-%d", (int)getpid());
    }
    if (!*s->vm_name || strlen(s->vm_name) > VCPUFREQ_PROTO_MAX_NAME
        || (s->profile && strlen(s->profile) > VCPUFREQ_PROTO_MAX_NAME)) {
        error_setg(errp, "vm-name must have 1 to %d bytes, profile at most %d", VCPUFREQ_PROTO_MAX_NAME,
                   VCPUFREQ_PROTO_MAX_NAME);
        return;
    }
    s->vcpus = 0;
    CPU_FOREACH(cpu) {
        s->vcpus++;
    }
    if (s->vcpus == 0 || s->vcpus > VCPUFREQ_MAX_VCPUS) {
        error_setg(errp, "%" PRIu32 " vCPUs: the device serves 1 to %u", s->vcpus, VCPUFREQ_MAX_VCPUS);
        return;
    }
    s->rx = g_malloc(VCPUFREQ_PROTO_MAX_DAEMON_MESSAGE);
    s->counts = g_new0(VCPUFreqVCPUCounts, s->vcpus);
    s->last_answer = g_malloc0_n(s->vcpus, sizeof(*s->last_answer));

    if (!vcf_connect(s, errp)) {
        return;
    }
    if (!vcf_hello(s, errp) || !vcf_attach(s, &daemon_base, errp)) {
        goto fail;
    }
    if (s->base == VCF_BASE_FROM_DAEMON) {
        s->base = daemon_base;
    } else if (s->base != daemon_base) {
        info_report("vcpufreq-cpufreq: base 0x%" PRIx64 " (the daemon's topology says 0x%" PRIx64
                    "; the guest's device tree must say 0x%" PRIx64 ")", s->base, daemon_base, s->base);
    }
    if (s->base % VCPUFREQ_UP_WINDOW_SIZE) {
        error_setg(errp, "base 0x%" PRIx64 " is not 4 KiB aligned", s->base);
        goto fail;
    }
    taken = memory_region_find(get_system_memory(), s->base, VCPUFREQ_TOTAL_SPAN);
    if (taken.mr) {
        error_setg(errp, "base 0x%" PRIx64 ": the device space (0x%x bytes) overlaps '%s' at 0x%" PRIx64
                   " (on -M virt, 0x0c000000 is free while no dynamic sysbus device is used)", s->base,
                   VCPUFREQ_TOTAL_SPAN, memory_region_name(taken.mr), taken.offset_within_address_space);
        memory_region_unref(taken.mr);
        goto fail;
    }

    memory_region_init_io(&s->space, OBJECT(s), &vcf_space_ops, s, "vcpufreq-cpufreq", VCPUFREQ_TOTAL_SPAN);
    /* vCPUs access the device at the same time (vcf_io_lock drops the BQL); it never re-enters itself. */
    s->space.disable_reentrancy_guard = true;
    if (s->map_shared && !vcf_map_shared(s, errp)) {
        goto fail;
    }
    sysbus_init_mmio(sbd, &s->space);
    sysbus_mmio_map(sbd, 0, s->base);

    object_property_add_uint64_ptr(OBJECT(s), "forwarded-reads", &s->forwarded_reads, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(OBJECT(s), "forwarded-writes", &s->forwarded_writes, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(OBJECT(s), "sync-writes", &s->sync_writes, OBJ_PROP_FLAG_READ);
    object_property_add_uint64_ptr(OBJECT(s), "failures", &s->failures, OBJ_PROP_FLAG_READ);
    s->exit_notifier.notify = vcf_exit_summary;
    qemu_add_exit_notifier(&s->exit_notifier);
    info_report("vcpufreq-cpufreq: %" PRIu32 " vCPUs at 0x%" PRIx64 "; mirror %s, shared page %s, %" PRIu32
                " doorbells", s->vcpus, s->base, s->mirror_mapped ? "mapped" : "not mapped",
                s->map_shared ? "mapped" : "not mapped", s->doorbell_count);
    return;
fail:
    close(s->sock);
    s->sock = -1;
}

static const Property vcf_properties[] = {
    DEFINE_PROP_STRING("socket", VCPUFreqCPUFreqState, socket_path),
    DEFINE_PROP_STRING("vm-name", VCPUFreqCPUFreqState, vm_name),
    DEFINE_PROP_STRING("profile", VCPUFreqCPUFreqState, profile),
    DEFINE_PROP_UINT64("base", VCPUFreqCPUFreqState, base, VCF_BASE_FROM_DAEMON),
    DEFINE_PROP_UINT32("timeout-ms", VCPUFreqCPUFreqState, timeout_ms, 5000),
    DEFINE_PROP_BOOL("map-shared", VCPUFreqCPUFreqState, map_shared, true),
    DEFINE_PROP_BOOL("mirror", VCPUFreqCPUFreqState, mirror_wanted, true),
    DEFINE_PROP_BOOL("doorbells", VCPUFreqCPUFreqState, doorbells_wanted, true),
};

static void vcf_instance_init(Object *obj)
{
    VCPUFreqCPUFreqState *s = VCPUFREQ_CPUFREQ(obj);
    s->sock = -1;
    s->next_id = 1;
    qemu_mutex_init(&s->io_lock);
}

static void vcf_instance_finalize(Object *obj)
{
    qemu_mutex_destroy(&VCPUFREQ_CPUFREQ(obj)->io_lock);
}

static void vcf_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);

    dc->realize = vcf_realize;
    dc->desc = "virtual-cpufreq registers served by the vcpufreq daemon";
    /* Created with -device and mapped at its own base, not on the platform bus. */
    dc->user_creatable = true;
    dc->hotpluggable = false;
    device_class_set_props(dc, vcf_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
}

static const TypeInfo vcf_info = {
    .name = TYPE_VCPUFREQ_CPUFREQ,
    .parent = TYPE_SYS_BUS_DEVICE,
    .instance_size = sizeof(VCPUFreqCPUFreqState),
    .instance_init = vcf_instance_init,
    .instance_finalize = vcf_instance_finalize,
    .class_init = vcf_class_init,
};

static void vcf_register_types(void)
{
    type_register_static(&vcf_info);
}

type_init(vcf_register_types)
