import SystemPackage

/// An eventfd(2) counter: the doorbell a guest's ioeventfd write bumps, and
/// the daemon's wake-up between threads. Close-on-exec always; nonblocking
/// by default so a drain never stalls an event loop.
public final class EventFD: Sendable {
    public let descriptor: FileDescriptor

    public init(initialValue: UInt32 = 0, nonblocking: Bool = true) throws(Errno) {
        descriptor = FileDescriptor(rawValue: try valueOrErrno { system_eventfd(initialValue, nonblocking) })
    }

    /// Takes ownership of an eventfd another process sent (a vhost-user
    /// call descriptor): closed in deinit.
    public init(adopting descriptor: FileDescriptor) {
        self.descriptor = descriptor
    }

    /// Adds `count` (1...2^64-2) to the counter.
    public func signal(_ count: UInt64 = 1, retryOnInterrupt: Bool = true) throws(Errno) {
        var value = count
        let result = withUnsafeBytes(of: &value) { bytes in
            syscallResult(retryOnInterrupt: retryOnInterrupt) { system_write(descriptor.rawValue, bytes) }
        }
        _ = try result.get()
    }

    /// Reads and resets the counter; nil when it is zero (nonblocking) —
    /// several kicks between two reads coalesce into one count.
    public func drain(retryOnInterrupt: Bool = true) throws(Errno) -> UInt64? {
        try readCounter(descriptor.rawValue, retryOnInterrupt: retryOnInterrupt)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
