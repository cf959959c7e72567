import SystemPackage

/// A child process started with posix_spawn and reaped with waitpid: no
/// Foundation `Process`, whose termination monitoring needs a CFSocket
/// wake-up pair that cannot be made while the loopback interface is down
/// (`Could not create wakeup socket pair for CFSocket`, after which
/// `waitUntilExit` and `isRunning` never see the child exit). Stopped by its
/// PID only, never by name.
public final class ChildProcess: Sendable {
    /// How a child ended (`waitpid`'s status, decoded).
    public enum Termination: Equatable, Sendable, CustomStringConvertible {
        case exited(Int32)
        case signaled(Int32)

        init(waitStatus: Int32) {
            let signal = waitStatus & 0x7f
            self = signal == 0 ? .exited((waitStatus >> 8) & 0xff) : .signaled(signal)
        }

        public var description: String {
            switch self {
            case .exited(let code): return "exit status \(code)"
            case .signaled(let signal): return "killed by signal \(signal)"
            }
        }
    }

    public let pid: Int32
    private let reaped = AnnotatedMutex<Termination?>(nil)

    /// Starts `arguments[0]` (a path) with `arguments`, stdin from
    /// /dev/null and stdout into `outputPath` (nil: /dev/null), stderr too
    /// unless `errorsToOutput` is false (then /dev/null), inheriting no
    /// descriptor beyond those three. `environment` nil keeps this
    /// process's environment.
    public init(
        _ arguments: [String], environment: [String: String]? = nil, outputPath: String? = nil,
        errorsToOutput: Bool = true
    ) throws(Errno) {
        precondition(!arguments.isEmpty, "a child process needs a path")
        let argv = arguments.map { Self.duplicate($0) } + [nil]
        let envp = environment.map { $0.sorted { $0.key < $1.key }.map { Self.duplicate("\($0.key)=\($0.value)") } + [nil] }
        defer {
            for pointer in argv { pointer?.deallocate() }
            for pointer in envp ?? [] { pointer?.deallocate() }
        }
        var pid: Int32 = 0
        let error: Int32 = arguments[0].withCString { path in
            argv.withUnsafeBufferPointer { argvBuffer in
                func spawn(_ envpPointer: UnsafePointer<UnsafeMutablePointer<CChar>?>?) -> Int32 {
                    if let outputPath {
                        return outputPath.withCString {
                            system_spawn(path, argvBuffer.baseAddress!, envpPointer, $0, errorsToOutput, &pid)
                        }
                    }
                    return system_spawn(path, argvBuffer.baseAddress!, envpPointer, nil, errorsToOutput, &pid)
                }
                guard let envp else { return spawn(nil) }
                return envp.withUnsafeBufferPointer { spawn($0.baseAddress) }
            }
        }
        guard error == 0 else { throw Errno(rawValue: error) }
        self.pid = pid
    }

    /// How the child ended; nil while it runs (reaps it when it has ended).
    public var termination: Termination? {
        reaped.withLock { state in
            if state == nil { state = Self.reap(pid, blocking: false) }
            return state
        }
    }

    public var isRunning: Bool { termination == nil }

    /// Waits until the child ends or `timeout` passes (nil: no limit).
    @discardableResult
    public func wait(timeout: Duration? = nil) -> Termination? {
        guard let timeout else {
            return reaped.withLock { state in
                if state == nil { state = Self.reap(pid, blocking: true) }
                return state
            }
        }
        let deadline = ContinuousClock.now + timeout
        while true {
            if let ended = termination { return ended }
            guard ContinuousClock.now < deadline else { return nil }
            system_sleep(microseconds: 2_000)
        }
    }

    /// Sends `signal` to the child's PID, unless it has been reaped (the PID may be reused).
    public func send(_ signal: Int32) {
        reaped.withLock { state in
            if state == nil { state = Self.reap(pid, blocking: false) }
            if state == nil { _ = system_kill(pid, signal) }
        }
    }

    /// SIGTERM, then SIGKILL after `grace`; returns how it ended.
    @discardableResult
    public func stop(grace: Duration = .seconds(5), signal: Int32 = 15) -> Termination? {
        if let ended = termination { return ended }
        send(signal)
        if let ended = wait(timeout: grace) { return ended }
        send(9)
        return wait(timeout: .seconds(10))
    }

    private static func reap(_ pid: Int32, blocking: Bool) -> Termination? {
        var status: Int32 = 0
        while true {
            let result = system_waitpid(pid, &status, !blocking)
            if result == pid { return Termination(waitStatus: status) }
            if result == 0 { return nil }
            if currentErrno() == Errno.interrupted.rawValue { continue }
            // ECHILD: not our child any more (reaped elsewhere); report it as gone.
            return .exited(-1)
        }
    }

    private static func duplicate(_ text: String) -> UnsafeMutablePointer<CChar>? {
        let utf8 = Array(text.utf8CString)
        let pointer = UnsafeMutablePointer<CChar>.allocate(capacity: utf8.count)
        pointer.initialize(from: utf8, count: utf8.count)
        return pointer
    }
}
