import SystemPackage

/// Who holds an `InstanceLock` another daemon wanted, as far as it can
/// tell: the pid (from /proc/locks, else from the lock file's line), the
/// state the holder last wrote, and whether a stop signal is waiting for it.
public struct LockHolder: Equatable, Sendable, CustomStringConvertible {
    public var pid: Int32?
    /// nil for a directory lock, or a line that does not parse.
    public var state: InstanceLock.State?
    /// SIGTERM or SIGINT sent to the holder and not read by it yet.
    public var stopSignalPending: Bool

    public init(pid: Int32?, state: InstanceLock.State?, stopSignalPending: Bool = false) {
        self.pid = pid
        self.state = state
        self.stopSignalPending = stopSignalPending
    }

    /// A stopping holder is waited for; any other refuses the newcomer.
    public var isStopping: Bool { state == .stopping || stopSignalPending }

    /// `pid 123, serving`; `pid unknown` when neither the kernel nor the file says.
    public var description: String {
        var text = pid.map { "pid \($0)" } ?? "pid unknown"
        if stopSignalPending && state != .stopping {
            text += ", stop signal pending"
        } else if let state {
            text += ", \(state.rawValue)"
        }
        return text
    }

    /// The pid and state of a lock file's line (`<pid> <state>`); nils for what does not parse.
    public static func parse(line text: String) -> (pid: Int32?, state: InstanceLock.State?) {
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" })
        let pid = fields.first.flatMap { Int32($0) }.flatMap { $0 > 0 ? $0 : nil }
        let state = fields.count > 1 ? InstanceLock.State(rawValue: String(fields[1])) : nil
        return (pid, state)
    }

    /// Reads the holder of the lock `descriptor` (a file or directory this
    /// process opened, but could not lock).
    static func reading(descriptor fd: Int32, kind: InstanceLock.Kind, procfs: ProcFS) -> LockHolder {
        var line: (pid: Int32?, state: InstanceLock.State?) = (nil, nil)
        if kind == .file {
            var bytes = [UInt8](repeating: 0, count: InstanceLock.lineLength)
            let count = bytes.withUnsafeMutableBytes { raw in system_pread(fd, raw, 0) }
            if count > 0 { line = parse(line: String(decoding: bytes[0..<count], as: UTF8.self)) }
        }
        let kernelPID = FileStatusProbe.identity(ofDescriptor: fd).flatMap {
            procfs.flockHolder(device: $0.device, inode: $0.inode)
        }
        // Only the kernel's pid is checked for signals: a pid from the file
        // may name a process of another pid namespace.
        let pending = kernelPID.flatMap { procfs.pendingSignals(ofProcess: $0) } ?? 0
        return LockHolder(
            pid: kernelPID ?? line.pid, state: line.state, stopSignalPending: pending & InstanceLock.stopSignalMask != 0)
    }
}

/// Why an `InstanceLock` could not be taken. Each message names the path.
public enum InstanceLockError: Error, Equatable, CustomStringConvertible {
    /// Another process holds the lock and is not stopping.
    case held(path: String, holder: LockHolder)
    /// The holder is stopping, but still held the lock after the wait.
    case stillStopping(path: String, holder: LockHolder, waitedMilliseconds: Int)
    /// The lock file or directory could not be opened or locked.
    case failed(path: String, operation: String, errno: Errno)

    public var path: String {
        switch self {
        case .held(let path, _), .stillStopping(let path, _, _), .failed(let path, _, _): return path
        }
    }

    /// The holder, when another process holds the lock.
    public var holder: LockHolder? {
        switch self {
        case .held(_, let holder), .stillStopping(_, let holder, _): return holder
        case .failed: return nil
        }
    }

    public var description: String {
        switch self {
        case .held(let path, let holder):
            return "locked by another vcpufreq daemon (\(holder)): \(path)"
        case .stillStopping(let path, let holder, let waited):
            return "another vcpufreq daemon (\(holder)) is still stopping after \(waited) ms: \(path)"
        case .failed(let path, let operation, let errno):
            return "cannot \(operation) lock \(path): \(errno)"
        }
    }
}
