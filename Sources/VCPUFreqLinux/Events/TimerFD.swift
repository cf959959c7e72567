import SystemPackage

/// A timerfd(2) on CLOCK_MONOTONIC (nonblocking, close-on-exec), armed one
/// shot at an absolute deadline: the policy's held requests and decays wake
/// the event loop through it.
public final class TimerFD: Sendable {
    public let descriptor: FileDescriptor

    public init() throws(Errno) {
        descriptor = FileDescriptor(rawValue: try valueOrErrno { system_timerfd_create() })
    }

    /// Fires once when CLOCK_MONOTONIC reaches `deadlineNanoseconds` (a past
    /// deadline fires at once). 0 is reserved by the kernel for disarm, so it
    /// is moved to 1 ns: still in the past.
    public func arm(atNanoseconds deadlineNanoseconds: UInt64) throws(Errno) {
        _ = try valueOrErrno { system_timerfd_arm(descriptor.rawValue, max(deadlineNanoseconds, 1)) }
    }

    public func disarm() throws(Errno) {
        _ = try valueOrErrno { system_timerfd_arm(descriptor.rawValue, 0) }
    }

    /// Expirations since the last read; nil when it has not fired.
    public func expirations(retryOnInterrupt: Bool = true) throws(Errno) -> UInt64? {
        try readCounter(descriptor.rawValue, retryOnInterrupt: retryOnInterrupt)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
