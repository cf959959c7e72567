import CVCPUFreqSys
import Glibc
import SystemPackage

// The raw calls, one function each, in one place: every one can be traced
// and failed on purpose through SyscallHook in debug builds. They return
// the kernel's raw result (-1 and errno on failure); `valueOrErrno` turns
// that into a value or a thrown Errno. Public files never call libc.

/// Routes one call through the debug hook (if a test installed one on this
/// task) and otherwise performs it. In release builds this is `call()`.
@inline(__always)
func hooked<R: FixedWidthInteger & SignedInteger>(
    _ name: StaticString, _ arguments: @autoclosure () -> [Int64],
    bytes: @autoclosure () -> [UInt8] = [], _ call: () -> R
) -> R {
    #if VCPUFREQ_SYSCALL_HOOKS
    if let hook = SyscallHook.current {
        let recorded = SyscallHook.Call(name: "\(name)", arguments: arguments(), bytes: bytes())
        switch hook.record(recorded) {
        case .passThrough: break
        case .succeed(let value): return R(truncatingIfNeeded: value)
        case .fail(let error):
            Glibc.errno = error.rawValue
            return -1
        }
    }
    #endif
    return call()
}

/// Turns a raw result into a value or an `Errno`, retrying EINTR when asked
/// (never for close). EFAULT and EBADF mean an argument this module built
/// (a pointer, a descriptor it owns) was wrong: our bug, so a precondition.
@inline(__always)
func syscallResult<R: FixedWidthInteger & SignedInteger>(
    retryOnInterrupt: Bool = true, _ body: () -> R
) -> Result<R, Errno> {
    while true {
        let result = body()
        if result >= 0 { return .success(result) }
        let error = Errno(rawValue: Glibc.errno)
        if retryOnInterrupt && error == .interrupted { continue }
        precondition(error != .badAddress, "EFAULT from a syscall: vcpufreq passed a bad pointer")
        precondition(error != .badFileDescriptor, "EBADF from a syscall: vcpufreq used a descriptor it does not own")
        return .failure(error)
    }
}

/// `syscallResult` as a typed throw.
@inline(__always)
func valueOrErrno<R: FixedWidthInteger & SignedInteger>(
    retryOnInterrupt: Bool = true, _ body: () -> R
) throws(Errno) -> R {
    try syscallResult(retryOnInterrupt: retryOnInterrupt, body).get()
}

private func bytesOf(_ buffer: UnsafeRawBufferPointer) -> [UInt8] { Array(buffer) }
private func int64(_ value: some BinaryInteger) -> Int64 { Int64(truncatingIfNeeded: value) }

// MARK: - Scheduling

func system_gettid() -> Int32 { vcpufreq_sys_gettid() }

/// getpid(2): the daemon's pid, written into its lock files.
func currentProcessID() -> Int32 { Glibc.getpid() }

func system_sched_setattr(_ tid: Int32, _ attr: UnsafeRawBufferPointer, _ flags: UInt32) -> Int32 {
    hooked("sched_setattr", [int64(tid), int64(flags)], bytes: bytesOf(attr)) {
        vcpufreq_sys_sched_setattr(tid, attr.baseAddress, flags)
    }
}

func system_sched_getattr(_ tid: Int32, _ attr: UnsafeMutableRawBufferPointer, _ flags: UInt32) -> Int32 {
    hooked("sched_getattr", [int64(tid), int64(attr.count), int64(flags)]) {
        vcpufreq_sys_sched_getattr(tid, attr.baseAddress, UInt32(attr.count), flags)
    }
}

func system_sched_setaffinity(_ tid: Int32, _ cpus: UnsafeBufferPointer<Int32>) -> Int32 {
    hooked("sched_setaffinity", [int64(tid)] + cpus.map(int64)) {
        vcpufreq_sys_sched_setaffinity(tid, cpus.baseAddress, Int32(cpus.count))
    }
}

func system_sched_getaffinity(_ tid: Int32, _ cpus: UnsafeMutableBufferPointer<Int32>) -> Int32 {
    hooked("sched_getaffinity", [int64(tid)]) {
        vcpufreq_sys_sched_getaffinity(tid, cpus.baseAddress, Int32(cpus.count))
    }
}

func system_getpriority(_ tid: Int32, _ nice: UnsafeMutablePointer<Int32>) -> Int32 {
    hooked("getpriority", [int64(tid)]) { vcpufreq_sys_get_nice(tid, nice) }
}

func system_setpriority(_ tid: Int32, _ nice: Int32) -> Int32 {
    hooked("setpriority", [int64(tid), int64(nice)]) { vcpufreq_sys_set_nice(tid, nice) }
}

// MARK: - Descriptors

/// open(2) read-only and close-on-exec; `directory` adds O_DIRECTORY. The
/// hook sees the path as the call's bytes (UTF-8), so a test can fail the
/// open of one chosen file.
func system_open_read_only(_ path: String, directory: Bool = false) -> Int32 {
    let flags = O_RDONLY | O_CLOEXEC | (directory ? O_DIRECTORY : 0)
    return hooked("open", [int64(flags)], bytes: Array(path.utf8)) { Glibc.open(path, flags) }
}

func system_close(_ fd: Int32) -> Int32 {
    hooked("close", [int64(fd)]) { Glibc.close(fd) }
}

func system_read(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer) -> Int {
    hooked("read", [int64(fd), int64(buffer.count)]) { Glibc.read(fd, buffer.baseAddress, buffer.count) }
}

func system_write(_ fd: Int32, _ buffer: UnsafeRawBufferPointer) -> Int {
    hooked("write", [int64(fd), int64(buffer.count)], bytes: bytesOf(buffer)) {
        Glibc.write(fd, buffer.baseAddress, buffer.count)
    }
}

func system_eventfd(_ initial: UInt32, _ nonblocking: Bool) -> Int32 {
    hooked("eventfd", [int64(initial), nonblocking ? 1 : 0]) { vcpufreq_sys_eventfd(initial, nonblocking ? 1 : 0) }
}

func system_epoll_create() -> Int32 {
    hooked("epoll_create1", []) { vcpufreq_sys_epoll_create() }
}

func system_epoll_ctl(_ epfd: Int32, _ op: Int32, _ fd: Int32, _ events: UInt32, _ token: UInt64) -> Int32 {
    hooked("epoll_ctl", [int64(epfd), int64(op), int64(fd), int64(events), int64(token)]) {
        vcpufreq_sys_epoll_ctl(epfd, op, fd, events, token)
    }
}

func system_epoll_wait(
    _ epfd: Int32, _ ready: UnsafeMutablePointer<vcpufreq_sys_epoll_ready>, _ capacity: Int32, _ timeout: Int32
) -> Int32 {
    hooked("epoll_wait", [int64(epfd), int64(capacity), int64(timeout)]) {
        vcpufreq_sys_epoll_wait(epfd, ready, capacity, timeout)
    }
}

func system_timerfd_create() -> Int32 {
    hooked("timerfd_create", []) { vcpufreq_sys_timerfd_create() }
}

func system_timerfd_arm(_ fd: Int32, _ deadlineNanoseconds: UInt64) -> Int32 {
    hooked("timerfd_settime", [int64(fd), int64(deadlineNanoseconds)]) { vcpufreq_sys_timerfd_arm(fd, deadlineNanoseconds) }
}

func system_block_signals(_ signals: UnsafeBufferPointer<Int32>) -> Int32 {
    hooked("pthread_sigmask", signals.map(int64)) {
        vcpufreq_sys_block_signals(signals.baseAddress, Int32(signals.count))
    }
}

func system_signalfd(_ signals: UnsafeBufferPointer<Int32>) -> Int32 {
    hooked("signalfd", signals.map(int64)) { vcpufreq_sys_signalfd(signals.baseAddress, Int32(signals.count)) }
}

func system_signal_pending(_ signal: Int32) -> Int32 {
    hooked("sigpending", [int64(signal)]) { vcpufreq_sys_signal_pending(signal) }
}

func system_memfd_create(_ name: UnsafePointer<CChar>, _ allowSealing: Bool) -> Int32 {
    hooked("memfd_create", [allowSealing ? 1 : 0]) { vcpufreq_sys_memfd_create(name, allowSealing ? 1 : 0) }
}

func system_ftruncate(_ fd: Int32, _ length: Int64) -> Int32 {
    hooked("ftruncate", [int64(fd), length]) { Glibc.ftruncate(fd, off_t(length)) }
}

/// mmap returns a pointer, so it cannot share `hooked`; an injected failure
/// returns nil with errno set, like the C shim.
func system_mmap(_ fd: Int32, _ length: Int, _ writable: Bool) -> UnsafeMutableRawPointer? {
    #if VCPUFREQ_SYSCALL_HOOKS
    if let hook = SyscallHook.current {
        switch hook.record(.init(name: "mmap", arguments: [int64(fd), int64(length), writable ? 1 : 0], bytes: [])) {
        case .passThrough, .succeed: break  // a faked mapping has no memory: map for real
        case .fail(let error):
            Glibc.errno = error.rawValue
            return nil
        }
    }
    #endif
    return vcpufreq_sys_mmap_shared(fd, length, writable ? 1 : 0)
}

func system_munmap(_ address: UnsafeMutableRawPointer, _ length: Int) -> Int32 {
    hooked("munmap", [int64(length)]) { Glibc.munmap(address, length) }
}

func system_monotonic_ns() -> UInt64 { vcpufreq_sys_monotonic_ns() }

func system_sleep(microseconds: UInt32) { _ = Glibc.usleep(microseconds) }

func system_pread(_ fd: Int32, _ buffer: UnsafeMutableRawBufferPointer, _ offset: Int64) -> Int {
    hooked("pread64", [int64(fd), int64(buffer.count), offset]) {
        Glibc.pread(fd, buffer.baseAddress, buffer.count, off_t(offset))
    }
}

// MARK: - Sockets

func system_seqpacket_socket(_ nonblocking: Bool) -> Int32 {
    hooked("socket", [nonblocking ? 1 : 0]) { vcpufreq_sys_seqpacket_socket(nonblocking ? 1 : 0) }
}

func system_seqpacket_pair(_ fds: UnsafeMutablePointer<Int32>) -> Int32 {
    hooked("socketpair", []) { vcpufreq_sys_seqpacket_pair(fds) }
}

func system_bind(_ fd: Int32, _ path: UnsafePointer<CChar>) -> Int32 {
    hooked("bind", [int64(fd)]) { vcpufreq_sys_bind_path(fd, path) }
}

func system_listen(_ fd: Int32, _ backlog: Int32) -> Int32 {
    hooked("listen", [int64(fd), int64(backlog)]) { Glibc.listen(fd, backlog) }
}

func system_connect(_ fd: Int32, _ path: UnsafePointer<CChar>) -> Int32 {
    hooked("connect", [int64(fd)]) { vcpufreq_sys_connect_path(fd, path) }
}

func system_accept(_ fd: Int32) -> Int32 {
    hooked("accept4", [int64(fd)]) { vcpufreq_sys_accept(fd) }
}

func system_send(
    _ fd: Int32, _ data: UnsafeRawBufferPointer, _ fds: UnsafeBufferPointer<Int32>, _ nonblocking: Bool
) -> Int {
    hooked("sendmsg", [int64(fd), int64(data.count)] + fds.map(int64), bytes: bytesOf(data)) {
        vcpufreq_sys_send_with_fds(fd, data.baseAddress, data.count, fds.baseAddress, Int32(fds.count), nonblocking ? 1 : 0)
    }
}

func system_receive(
    _ fd: Int32, _ data: UnsafeMutableRawBufferPointer, _ fds: UnsafeMutableBufferPointer<Int32>,
    _ fdCount: UnsafeMutablePointer<Int32>, _ truncation: UnsafeMutablePointer<Int32>, _ nonblocking: Bool
) -> Int {
    hooked("recvmsg", [int64(fd), int64(data.count), int64(fds.count)]) {
        vcpufreq_sys_recv_with_fds(
            fd, data.baseAddress, data.count, fds.baseAddress, Int32(fds.count), fdCount, truncation,
            nonblocking ? 1 : 0)
    }
}

func system_peer_credentials(
    _ fd: Int32, _ pid: UnsafeMutablePointer<Int32>, _ uid: UnsafeMutablePointer<UInt32>,
    _ gid: UnsafeMutablePointer<UInt32>
) -> Int32 {
    hooked("getsockopt", [int64(fd)]) { vcpufreq_sys_peer_credentials(fd, pid, uid, gid) }
}

func system_unlink(_ path: UnsafePointer<CChar>) -> Int32 {
    hooked("unlink", []) { Glibc.unlink(path) }
}

func system_chmod(_ path: UnsafePointer<CChar>, _ mode: UInt32) -> Int32 {
    hooked("chmod", [int64(mode)]) { Glibc.chmod(path, mode_t(mode)) }
}

func system_chown(_ path: UnsafePointer<CChar>, _ uid: UInt32?, _ gid: UInt32?) -> Int32 {
    // (uid_t)-1 leaves that id unchanged.
    let owner = uid ?? UInt32.max
    let group = gid ?? UInt32.max
    return hooked("chown", [int64(owner), int64(group)]) { Glibc.chown(path, owner, group) }
}

/// errno after a call that reports failure other than by -1 (mmap's NULL).
func currentErrno() -> Int32 { Glibc.errno }

func system_mkdir(_ path: UnsafePointer<CChar>, _ mode: UInt32) -> Int32 {
    hooked("mkdir", [int64(mode)]) { Glibc.mkdir(path, mode_t(mode)) }
}

func system_rmdir(_ path: UnsafePointer<CChar>) -> Int32 {
    hooked("rmdir", []) { Glibc.rmdir(path) }
}

func system_fsync(_ fd: Int32) -> Int32 {
    hooked("fsync", [int64(fd)]) { Glibc.fsync(fd) }
}

/// flock(fd, LOCK_EX | LOCK_NB): EWOULDBLOCK when another open file holds it.
func system_flock_exclusive(_ fd: Int32) -> Int32 {
    hooked("flock", [int64(fd), int64(LOCK_EX | LOCK_NB)]) { vcpufreq_sys_flock_exclusive(fd) }
}

/// A lock file: open(O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, mode), or
/// read-only and never created when `writable` is false. A symlink at the
/// path fails (ELOOP) rather than have the daemon write through it.
func system_open_lock_file(_ path: UnsafePointer<CChar>, writable: Bool, mode: UInt32) -> Int32 {
    let flags = (writable ? O_RDWR | O_CREAT : O_RDONLY) | O_NOFOLLOW | O_CLOEXEC
    return hooked("open", [int64(flags), int64(mode)]) { Glibc.open(path, flags, mode_t(mode)) }
}

/// open(O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC): a directory to lock.
func system_open_directory(_ path: UnsafePointer<CChar>) -> Int32 {
    let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
    return hooked("open", [int64(flags)]) { Glibc.open(path, flags) }
}

func system_pwrite(_ fd: Int32, _ buffer: UnsafeRawBufferPointer, _ offset: Int64) -> Int {
    hooked("pwrite64", [int64(fd), int64(buffer.count), offset], bytes: bytesOf(buffer)) {
        Glibc.pwrite(fd, buffer.baseAddress, buffer.count, off_t(offset))
    }
}

func system_rename(_ from: UnsafePointer<CChar>, _ to: UnsafePointer<CChar>) -> Int32 {
    hooked("rename", []) { Glibc.rename(from, to) }
}

/// Reads the 8-byte counter of an eventfd or timerfd (nonblocking): its
/// value, which the read resets; nil when it is zero (EAGAIN).
func readCounter(_ descriptor: Int32, retryOnInterrupt: Bool) throws(Errno) -> UInt64? {
    var value: UInt64 = 0
    let result = withUnsafeMutableBytes(of: &value) { bytes in
        syscallResult(retryOnInterrupt: retryOnInterrupt) { system_read(descriptor, bytes) }
    }
    switch result {
    case .success: return value
    case .failure(.resourceTemporarilyUnavailable): return nil
    case .failure(let error): throw error
    }
}
