import SystemPackage

/// An exclusive lock on something only one daemon may use at a time (its
/// state directory, its socket path, its metrics file, its BPF pin
/// directory), held for the daemon's lifetime: flock(2) `LOCK_EX |
/// LOCK_NB` on a lock file, or on the directory itself where no file can be
/// created (bpffs, cgroupfs).
///
/// The kernel decides: two processes cannot hold it at once, and it is
/// released when its holder exits however it exits (SIGKILL too), so a lock
/// is never stale and a dead daemon's leftovers are recovered as before.
/// Lock files are never removed: a process may hold one open, and a new
/// file at the same path would let a second daemon lock "the same" path.
///
/// A lock file holds one line, `<pid> <state>` (24 bytes, padded), so the
/// daemon that finds it held can say who holds it and whether that daemon
/// is stopping. The pid in messages comes from the kernel (/proc/locks)
/// when it lists one; the line is for the state and for humans.
public final class InstanceLock {
    public enum Kind: Sendable {
        /// A regular lock file, created when missing (mode 0644), carrying the holder's line.
        case file
        /// An existing directory, locked as itself (no line to write).
        case directory
    }

    /// What the holder is doing, written into its lock files.
    public enum State: String, Sendable, CaseIterable {
        /// Locked, not serving yet: another daemon refuses at once.
        case starting
        /// Serving: another daemon refuses at once.
        case serving
        /// Restoring its threads before it exits: another daemon waits for it.
        case stopping
    }

    /// The stop signals a starting daemon looks for in the holder's pending
    /// set (SIGTERM, SIGINT): a daemon that was sent one but has not read it
    /// yet is stopping too.
    static let stopSignalMask: UInt64 = 1 << (15 - 1) | 1 << (2 - 1)
    /// Bytes of the holder's line, newline included.
    static let lineLength = 24
    /// How often a daemon waiting for a stopping holder tries again.
    static let retryMicroseconds: UInt32 = 10_000

    public let path: String
    public let kind: Kind
    /// -1 once released.
    private var descriptor: Int32
    /// Whether the line can be written (the file was opened writable).
    private let writable: Bool

    private init(path: String, kind: Kind, descriptor: Int32, writable: Bool) {
        self.path = path
        self.kind = kind
        self.descriptor = descriptor
        self.writable = writable
    }

    /// Takes the lock at `path` and writes `<pid> starting` into it. A
    /// holder that is stopping (its line says so, or SIGTERM/SIGINT is
    /// pending for it) is waited for, up to `stoppingWaitMilliseconds`;
    /// `onWait` is called once when waiting begins.
    /// - Throws: `.held` when another process holds it and is not stopping,
    ///   `.stillStopping` when the wait ran out, `.failed` when the lock
    ///   file or directory cannot be opened or locked.
    public static func acquire(
        _ path: String, kind: Kind, stoppingWaitMilliseconds: Int = 0, procfs: ProcFS = ProcFS(),
        onWait: (LockHolder) -> Void = { _ in }
    ) throws(InstanceLockError) -> InstanceLock {
        let start = MonotonicClock.nowNanoseconds()
        var waiting = false
        while true {
            let (fd, writable) = try open(path, kind: kind)
            switch syscallResult({ system_flock_exclusive(fd) }) {
            case .success:
                // The path may have been removed or replaced between open and
                // flock: then this lock is on a file nobody else will open.
                guard let locked = FileStatusProbe.identity(ofDescriptor: fd), FileIdentity.of(path: path) == locked else {
                    _ = system_close(fd)
                    continue
                }
                let lock = InstanceLock(path: path, kind: kind, descriptor: fd, writable: writable)
                lock.announce(.starting)
                return lock
            case .failure(.resourceTemporarilyUnavailable):
                let holder = LockHolder.reading(descriptor: fd, kind: kind, procfs: procfs)
                _ = system_close(fd)
                let waited = Int((MonotonicClock.nowNanoseconds() - start) / 1_000_000)
                guard holder.isStopping else { throw .held(path: path, holder: holder) }
                guard waited < stoppingWaitMilliseconds else {
                    throw .stillStopping(path: path, holder: holder, waitedMilliseconds: waited)
                }
                if !waiting {
                    waiting = true
                    onWait(holder)
                }
                system_sleep(microseconds: retryMicroseconds)
            case .failure(let error):
                _ = system_close(fd)
                throw .failed(path: path, operation: "flock", errno: error)
            }
        }
    }

    /// Opens the lock file (creating it) or the directory. A lock file this
    /// process may not write (another user's) is opened read-only: it still
    /// locks, it only carries no line of ours.
    private static func open(_ path: String, kind: Kind) throws(InstanceLockError) -> (Int32, Bool) {
        switch kind {
        case .directory:
            let opened = path.withCString { cPath in syscallResult { system_open_directory(cPath) } }
            switch opened {
            case .success(let fd): return (fd, false)
            case .failure(let error): throw .failed(path: path, operation: "open", errno: error)
            }
        case .file:
            var writable = true
            var opened = path.withCString { cPath in syscallResult { system_open_lock_file(cPath, writable: true, mode: 0o644) } }
            if case .failure(let error) = opened, error == .permissionDenied || error == .readOnlyFileSystem {
                writable = false
                opened = path.withCString { cPath in syscallResult { system_open_lock_file(cPath, writable: false, mode: 0) } }
            }
            switch opened {
            case .success(let fd):
                guard FileStatusProbe.isRegularFile(descriptor: fd) else {
                    _ = system_close(fd)
                    throw .failed(path: path, operation: "open", errno: .invalidArgument)
                }
                return (fd, writable)
            case .failure(let error):
                throw .failed(path: path, operation: "open", errno: error)
            }
        }
    }

    /// The line a holder writes: `<pid> <state>`, padded to `lineLength`.
    static func line(pid: Int32, state: State) -> [UInt8] {
        var text = Array("\(pid) \(state.rawValue)".utf8.prefix(lineLength - 1))
        text += [UInt8](repeating: UInt8(ascii: " "), count: lineLength - 1 - text.count)
        return text + [UInt8(ascii: "\n")]
    }

    /// Writes `<our pid> <state>` over the line (one pwrite of a fixed
    /// length, so a reader sees the old line or the new one). Nothing for a
    /// directory or a read-only lock file; a failed write is ignored (the
    /// lock itself is what counts).
    public func announce(_ state: State) {
        guard kind == .file, writable, descriptor >= 0 else { return }
        let bytes = Self.line(pid: currentProcessID(), state: state)
        _ = system_ftruncate(descriptor, Int64(Self.lineLength))
        _ = bytes.withUnsafeBytes { raw in system_pwrite(descriptor, raw, 0) }
    }

    public var isHeld: Bool { descriptor >= 0 }

    /// Releases the lock (closing its descriptor); the file stays.
    public func release() {
        guard descriptor >= 0 else { return }
        _ = system_close(descriptor)
        descriptor = -1
    }

    deinit { release() }
}
