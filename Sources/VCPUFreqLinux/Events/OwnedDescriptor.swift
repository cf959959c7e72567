import SystemPackage

/// A file descriptor this process owns and must close exactly once: closed
/// in deinit unless `release()` handed it on (to KVM, to a peer over a
/// socket). Descriptors received over a socket arrive as these, so one that
/// nobody claims is closed rather than leaked.
public final class OwnedDescriptor {
    private var descriptor: FileDescriptor?

    /// Takes ownership of `descriptor`.
    public init(taking descriptor: FileDescriptor) { self.descriptor = descriptor }

    /// The descriptor, while owned. Using it after `close()`/`release()` is a bug.
    public var rawDescriptor: FileDescriptor {
        guard let descriptor else { preconditionFailure("descriptor used after close() or release()") }
        return descriptor
    }

    public var isOpen: Bool { descriptor != nil }

    /// Gives up ownership: the caller now closes it.
    public func release() -> FileDescriptor {
        let owned = rawDescriptor
        descriptor = nil
        return owned
    }

    /// Closes now and reports the error (never retried: Linux closes the
    /// descriptor even when close fails with EINTR).
    public func close() throws(Errno) {
        guard let descriptor else { return }
        self.descriptor = nil
        _ = try valueOrErrno(retryOnInterrupt: false) { system_close(descriptor.rawValue) }
    }

    deinit {
        if let descriptor { _ = system_close(descriptor.rawValue) }
    }
}
