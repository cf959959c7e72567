import CVCPUFreqSys
import SystemPackage

/// Readiness bits of epoll(7).
public struct EpollEvents: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// The corresponding C constant is `EPOLLIN`.
    public static var readable: EpollEvents { EpollEvents(rawValue: vcpufreq_sys_epollin()) }
    /// The corresponding C constant is `EPOLLOUT`.
    public static var writable: EpollEvents { EpollEvents(rawValue: vcpufreq_sys_epollout()) }
    /// The corresponding C constant is `EPOLLERR` (always reported).
    public static var error: EpollEvents { EpollEvents(rawValue: vcpufreq_sys_epollerr()) }
    /// The corresponding C constant is `EPOLLHUP` (always reported).
    public static var hangUp: EpollEvents { EpollEvents(rawValue: vcpufreq_sys_epollhup()) }
    /// The corresponding C constant is `EPOLLET`.
    public static var edgeTriggered: EpollEvents { EpollEvents(rawValue: vcpufreq_sys_epollet()) }
}

/// One ready descriptor: the token it was registered with and what happened.
public struct EpollReady: Equatable, Sendable {
    public var token: UInt64
    public var events: EpollEvents
}

/// Where `Epoll.wait` writes ready descriptors: allocated once, reused by
/// every wait, so the event loop allocates nothing per wake-up.
public final class EpollReadyBuffer {
    /// The most entries one wait can return (the C shim's stack batch).
    public static let maximumCapacity = Int(VCPUFREQ_SYS_EPOLL_BATCH)

    let storage: UnsafeMutablePointer<vcpufreq_sys_epoll_ready>
    public let capacity: Int
    /// Entries filled by the last wait.
    public internal(set) var count = 0

    /// `capacity` is clamped to 1...maximumCapacity.
    public init(capacity: Int) {
        self.capacity = min(max(capacity, 1), Self.maximumCapacity)
        storage = .allocate(capacity: self.capacity)
        storage.initialize(repeating: vcpufreq_sys_epoll_ready(), count: self.capacity)
    }

    public subscript(index: Int) -> EpollReady {
        precondition(index >= 0 && index < count, "epoll ready index out of range")
        let entry = storage[index]
        return EpollReady(token: entry.token, events: EpollEvents(rawValue: entry.events))
    }

    deinit { storage.deallocate() }
}

/// An epoll(7) instance (close-on-exec). Descriptors are registered with a
/// caller-chosen 64-bit token (a VM index and a doorbell index, say) that
/// comes back in each ready entry: no lookup table on the event path.
public final class Epoll: Sendable {
    public let descriptor: FileDescriptor

    public init() throws(Errno) {
        descriptor = FileDescriptor(rawValue: try valueOrErrno { system_epoll_create() })
    }

    public func add(_ fd: FileDescriptor, events: EpollEvents, token: UInt64) throws(Errno) {
        _ = try valueOrErrno {
            system_epoll_ctl(descriptor.rawValue, Int32(VCPUFREQ_SYS_EPOLL_ADD), fd.rawValue, events.rawValue, token)
        }
    }

    public func modify(_ fd: FileDescriptor, events: EpollEvents, token: UInt64) throws(Errno) {
        _ = try valueOrErrno {
            system_epoll_ctl(descriptor.rawValue, Int32(VCPUFREQ_SYS_EPOLL_MOD), fd.rawValue, events.rawValue, token)
        }
    }

    public func remove(_ fd: FileDescriptor) throws(Errno) {
        _ = try valueOrErrno {
            system_epoll_ctl(descriptor.rawValue, Int32(VCPUFREQ_SYS_EPOLL_DEL), fd.rawValue, 0, 0)
        }
    }

    /// Waits up to `timeoutMilliseconds` (-1 = forever, 0 = poll) and fills
    /// `buffer`; returns the number of ready entries (0 on timeout). With
    /// `retryOnInterrupt` false, EINTR is thrown so a signal can end the wait.
    @discardableResult
    public func wait(
        into buffer: EpollReadyBuffer, timeoutMilliseconds: Int32 = -1, retryOnInterrupt: Bool = true
    ) throws(Errno) -> Int {
        buffer.count = 0
        let count = try valueOrErrno(retryOnInterrupt: retryOnInterrupt) {
            system_epoll_wait(descriptor.rawValue, buffer.storage, Int32(buffer.capacity), timeoutMilliseconds)
        }
        buffer.count = Int(count)
        return Int(count)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
