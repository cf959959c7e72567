import SystemPackage

/// An anonymous memory file (memfd_create(2), close-on-exec) of a fixed
/// size: the shared page handed to the VMM, which maps it into the guest.
public final class MemoryFile: Sendable {
    public let descriptor: FileDescriptor
    public let byteCount: Int

    /// `byteCount` must be positive (the daemon uses one page per VM).
    public init(name: String, byteCount: Int, allowSealing: Bool = false) throws(Errno) {
        precondition(byteCount > 0, "a memory file needs a size")
        let created = name.withCString { cName in syscallResult { system_memfd_create(cName, allowSealing) } }
        let fd = try created.get()
        let resized = syscallResult { system_ftruncate(fd, Int64(byteCount)) }
        if case .failure(let error) = resized {
            _ = system_close(fd)
            throw error
        }
        descriptor = FileDescriptor(rawValue: fd)
        self.byteCount = byteCount
    }

    /// Seals the file's size (F_SEAL_SHRINK | F_SEAL_GROW; it must have been
    /// created with `allowSealing`): a process it is sent to can map it
    /// without fearing SIGBUS, as with QEMU's memory-backend-memfd.
    public func sealSize() throws(Errno) {
        _ = try valueOrErrno { system_seal_size(descriptor.rawValue) }
    }

    /// Maps the whole file shared (what one side writes the other sees).
    public func map(writable: Bool = true) throws(Errno) -> MappedRegion {
        try MappedRegion(mapping: descriptor, byteCount: byteCount, writable: writable)
    }

    deinit { _ = system_close(descriptor.rawValue) }
}

/// A shared mapping that is unmapped in deinit: whoever holds the region
/// keeps the memory valid.
public final class MappedRegion: @unchecked Sendable {
    /// Sendable because the mapping itself never changes; what callers store
    /// into it is their protocol's concern (the shared page has its own
    /// sequence counters).
    public let baseAddress: UnsafeMutableRawPointer
    public let byteCount: Int

    /// mmap(MAP_SHARED) of the first `byteCount` bytes of `descriptor`.
    public init(mapping descriptor: FileDescriptor, byteCount: Int, writable: Bool = true) throws(Errno) {
        precondition(byteCount > 0, "cannot map zero bytes")
        guard let address = system_mmap(descriptor.rawValue, byteCount, writable) else {
            throw Errno(rawValue: currentErrno())
        }
        baseAddress = address
        self.byteCount = byteCount
    }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: baseAddress, count: byteCount) }

    deinit { _ = system_munmap(baseAddress, byteCount) }
}
