import Glibc
import SystemPackage

/// An eventfd: the doorbell KVM signals for an ioeventfd registration. Each
/// signal adds 1 to its counter; a read returns the sum and resets it, so
/// many kicks between two reads coalesce into one wake-up.
public final class EventFD: @unchecked Sendable {
    public let fileDescriptor: FileDescriptor

    /// - Parameter nonBlocking: reads return nil instead of waiting when the counter is 0.
    public init(nonBlocking: Bool = true) throws(KVMError) {
        fileDescriptor = FileDescriptor(rawValue: try KVMCall.eventfdCreate(nonBlocking: nonBlocking))
    }

    deinit { try? fileDescriptor.close() }

    /// Reads and resets the counter: nil when it is 0 (non-blocking mode).
    public func read() throws(KVMError) -> UInt64? {
        var value: UInt64 = 0
        while true {
            let count = Glibc.read(fileDescriptor.rawValue, &value, 8)
            if count == 8 { return value }
            let error = errno
            if error == EINTR { continue }
            if error == EAGAIN { return nil }
            throw .systemCall(operation: "read eventfd", errno: .init(rawValue: error))
        }
    }

    /// Adds `amount` to the counter (what KVM does per guest write, with 1).
    public func signal(_ amount: UInt64 = 1) throws(KVMError) {
        var value = amount
        while true {
            if Glibc.write(fileDescriptor.rawValue, &value, 8) == 8 { return }
            let error = errno
            if error == EINTR { continue }
            throw .systemCall(operation: "write eventfd", errno: .init(rawValue: error))
        }
    }
}
