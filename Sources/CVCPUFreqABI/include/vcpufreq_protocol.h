/*
 * vcpufreq protocol v1: VMM <-> daemon over a SOCK_SEQPACKET Unix socket.
 * docs/protocol.md is the normative description. One message per packet,
 * little-endian, a 16-byte header then a body. The structs below describe
 * the fixed-size messages exactly (naturally aligned, no padding); messages
 * with strings (HELLO, ATTACH, HELLO_OK, ATTACH_OK, ERROR) are laid out in
 * docs/protocol.md. A string is a u16 byte count followed by UTF-8 bytes (no NUL).
 */
#ifndef VCPUFREQ_PROTOCOL_H
#define VCPUFREQ_PROTOCOL_H

#include <stdint.h>

#define VCPUFREQ_PROTO_MAGIC               0x46504356u /* "VCPF", first field of HELLO */
#define VCPUFREQ_PROTO_VERSION             1
#define VCPUFREQ_PROTO_HEADER_SIZE         16
#define VCPUFREQ_PROTO_MAX_CLIENT_MESSAGE  8192
#define VCPUFREQ_PROTO_MAX_DAEMON_MESSAGE  65536
#define VCPUFREQ_PROTO_MAX_STRING          255
#define VCPUFREQ_PROTO_MAX_NAME            64
#define VCPUFREQ_PROTO_MAX_VCPUS           1024
#define VCPUFREQ_PROTO_DOORBELLS_PER_MSG   240

/* Message types; a reply is its request's type with bit 7 set. */
enum vcpufreq_msg_type {
    VCPUFREQ_MSG_HELLO      = 0x01,
    VCPUFREQ_MSG_ATTACH     = 0x02,
    VCPUFREQ_MSG_DETACH     = 0x03,
    VCPUFREQ_MSG_READ       = 0x04,
    VCPUFREQ_MSG_WRITE      = 0x05,
    VCPUFREQ_MSG_MAP_SHARED = 0x06,
    VCPUFREQ_MSG_STATUS     = 0x07,
    VCPUFREQ_MSG_HELLO_OK   = 0x81,
    VCPUFREQ_MSG_ATTACH_OK  = 0x82,
    VCPUFREQ_MSG_DETACH_OK  = 0x83,
    VCPUFREQ_MSG_READ_OK    = 0x84,
    VCPUFREQ_MSG_WRITE_OK   = 0x85,
    VCPUFREQ_MSG_SHARED_OK  = 0x86,
    VCPUFREQ_MSG_DOORBELLS  = 0x87,
    VCPUFREQ_MSG_STATUS_OK  = 0x88,
    VCPUFREQ_MSG_ERROR      = 0xFF,
};

/* Header flags. */
#define VCPUFREQ_MSG_FLAG_SYNC 0x0001u /* WRITE: reply WRITE_OK once processed */

/* HELLO features about the protocol (bits 0-15 are the shared page's
 * VCPUFREQ_FEATURE_*). A daemon grants in HELLO_OK only the bits it knows. */
#define VCPUFREQ_PROTO_F_BPF_MAP_PAGE 0x00010000u /* the VMM can map a BPF-map shared page */

/* SHARED_OK page_kind. */
#define VCPUFREQ_PAGE_KIND_MEMFD   0u /* one fd: a memfd with the page and the mirror */
#define VCPUFREQ_PAGE_KIND_BPF_MAP 1u /* fd 0: the page, an mmapable BPF array map (offset 0); fd 1: the mirror's memfd, if mirror_size > 0 */

/* MAP_SHARED flags. */
#define VCPUFREQ_MAP_MIRROR    0x1u /* also the read-only mirror of the upstream windows */
#define VCPUFREQ_MAP_DOORBELLS 0x2u /* one doorbell eventfd per vCPU */

/* STATUS flags. */
#define VCPUFREQ_STATUS_ALL_VMS 0x1u

/* ERROR codes. */
enum vcpufreq_error {
    VCPUFREQ_ERR_MALFORMED              = 1,
    VCPUFREQ_ERR_UNSUPPORTED_VERSION    = 2,
    VCPUFREQ_ERR_UNKNOWN_TYPE           = 3,
    VCPUFREQ_ERR_INVALID_STATE          = 4,
    VCPUFREQ_ERR_FOREIGN_THREAD         = 5,
    VCPUFREQ_ERR_UNKNOWN_PROFILE        = 6,
    VCPUFREQ_ERR_PERMISSION_DENIED      = 7,
    VCPUFREQ_ERR_UNEXPECTED_DESCRIPTORS = 8,
    VCPUFREQ_ERR_RESOURCES              = 9,
    VCPUFREQ_ERR_DUPLICATE_VM           = 10,
};

struct vcpufreq_msg_header {
    uint16_t type;
    uint16_t flags;
    uint32_t length;   /* whole message, header included; equals the packet size */
    uint32_t id;       /* chosen by the client, echoed in replies */
    uint32_t reserved; /* 0 */
};

/* READ: a guest load from the device space (a forwarded MMIO exit). */
struct vcpufreq_msg_read {
    struct vcpufreq_msg_header header;
    uint32_t vcpu;   /* vCPU that executed the access */
    uint32_t width;  /* bytes */
    uint64_t offset; /* GPA - base address */
};

/* WRITE: a guest store; posted unless VCPUFREQ_MSG_FLAG_SYNC. */
struct vcpufreq_msg_write {
    struct vcpufreq_msg_header header;
    uint32_t vcpu;
    uint32_t width;
    uint64_t offset;
    uint64_t value;
};

struct vcpufreq_msg_map_shared {
    struct vcpufreq_msg_header header;
    uint32_t flags; /* VCPUFREQ_MAP_* */
};

struct vcpufreq_msg_status {
    struct vcpufreq_msg_header header;
    uint32_t flags; /* VCPUFREQ_STATUS_* */
};

struct vcpufreq_msg_read_ok {
    struct vcpufreq_msg_header header;
    uint64_t value;
    uint32_t invalid; /* 0 = valid access, else the device's invalid-access code + 1 */
    uint32_t reserved;
};

struct vcpufreq_msg_write_ok {
    struct vcpufreq_msg_header header;
    uint32_t invalid;
    uint32_t reserved;
};

struct vcpufreq_msg_detach_ok {
    struct vcpufreq_msg_header header;
    uint32_t restored_threads;
};

/* SHARED_OK carries (SCM_RIGHTS), by page_kind: VCPUFREQ_PAGE_KIND_MEMFD one
 * fd, the memfd holding both regions; VCPUFREQ_PAGE_KIND_BPF_MAP the page's
 * BPF map fd, then the mirror's memfd when mirror_size > 0. Either way the
 * page is mapped with mmap(MAP_SHARED) at page_offset of the first fd. */
struct vcpufreq_msg_shared_ok {
    struct vcpufreq_msg_header header;
    uint64_t memfd_size;           /* bytes of the memfd (BPF-map page: of the mirror's memfd) */
    uint64_t page_offset;          /* shared page region: offset in the first fd */
    uint64_t page_size;
    uint64_t page_device_offset;   /* where to map it: base + this */
    uint64_t mirror_offset;        /* read-only mirror of the upstream windows */
    uint64_t mirror_size;          /* 0 when not requested */
    uint64_t mirror_device_offset; /* map with KVM_MEM_READONLY at base + this */
    uint64_t doorbell_device_offset;
    uint32_t doorbell_stride;      /* doorbell i at base + doorbell_device_offset + i * stride */
    uint32_t doorbell_count;
    uint32_t doorbell_messages;    /* DOORBELLS messages that follow */
    uint32_t page_kind;            /* VCPUFREQ_PAGE_KIND_* (daemons before it sent 0: memfd) */
};

/* DOORBELLS carries `count` eventfds (SCM_RIGHTS), for doorbells first..first+count-1. */
struct vcpufreq_msg_doorbells {
    struct vcpufreq_msg_header header;
    uint32_t first;
    uint32_t count;
};

_Static_assert(sizeof(struct vcpufreq_msg_header) == 16, "header is 16 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_read) == 32, "READ is 32 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_write) == 40, "WRITE is 40 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_map_shared) == 20, "MAP_SHARED is 20 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_status) == 20, "STATUS is 20 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_read_ok) == 32, "READ_OK is 32 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_write_ok) == 24, "WRITE_OK is 24 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_detach_ok) == 20, "DETACH_OK is 20 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_shared_ok) == 96, "SHARED_OK is 96 bytes");
_Static_assert(sizeof(struct vcpufreq_msg_doorbells) == 24, "DOORBELLS is 24 bytes");

#endif /* VCPUFREQ_PROTOCOL_H */
