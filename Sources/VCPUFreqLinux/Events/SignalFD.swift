import CVCPUFreqSys
import SystemPackage

/// A signal number (an open set: only the ones the daemon handles are named).
public struct SignalNumber: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// The corresponding C constant is `SIGHUP`: reload the topology file.
    public static var hangUp: SignalNumber { SignalNumber(rawValue: 1) }
    /// The corresponding C constant is `SIGINT`.
    public static var interrupt: SignalNumber { SignalNumber(rawValue: 2) }
    /// The corresponding C constant is `SIGTERM`.
    public static var terminate: SignalNumber { SignalNumber(rawValue: 15) }

    /// The signals the daemon turns into events: stop (TERM, INT), reload (HUP).
    public static let daemonSignals: [SignalNumber] = [.terminate, .interrupt, .hangUp]

    public var description: String {
        switch rawValue {
        case 1: return "SIGHUP"
        case 2: return "SIGINT"
        case 15: return "SIGTERM"
        default: return "signal \(rawValue)"
        }
    }
}

/// A signalfd(2) (nonblocking, close-on-exec): signals become readable events
/// in the epoll loop instead of handlers running at arbitrary points.
public final class SignalFD: Sendable {
    public let descriptor: FileDescriptor
    public let signals: [SignalNumber]

    /// Blocks `signals` in the calling thread (threads created afterwards
    /// inherit the mask, so call this first in main) and opens the descriptor.
    public init(signals: [SignalNumber] = SignalNumber.daemonSignals) throws(Errno) {
        let numbers = signals.map(\.rawValue)
        let blocked = numbers.withUnsafeBufferPointer { list in syscallResult { system_block_signals(list) } }
        _ = try blocked.get()
        let opened = numbers.withUnsafeBufferPointer { list in syscallResult { system_signalfd(list) } }
        descriptor = FileDescriptor(rawValue: try opened.get())
        self.signals = signals
    }

    /// The next pending signal; nil when none is pending.
    public func next(retryOnInterrupt: Bool = true) throws(Errno) -> SignalNumber? {
        let size = vcpufreq_sys_signalfd_siginfo_size()
        let result = withUnsafeTemporaryAllocation(byteCount: size, alignment: 8) { buffer in
            let read = syscallResult(retryOnInterrupt: retryOnInterrupt) {
                system_read(descriptor.rawValue, UnsafeMutableRawBufferPointer(buffer))
            }
            // ssi_signo is the struct's first field (u32).
            return read.map { _ in buffer.load(fromByteOffset: 0, as: UInt32.self) }
        }
        switch result {
        case .success(let number): return SignalNumber(rawValue: Int32(bitPattern: number))
        case .failure(.resourceTemporarilyUnavailable): return nil
        case .failure(let error): throw error
        }
    }

    /// Whether `signal` is pending, i.e. sent and not read from this
    /// descriptor yet (sigpending(2)). The daemon checks for a stop signal
    /// before reading it, so a daemon starting next to it sees the stop
    /// either as a pending signal or as "stopping" in the lock file.
    public func isPending(_ signal: SignalNumber) -> Bool {
        system_signal_pending(signal.rawValue) == 1
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
