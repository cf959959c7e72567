import SystemPackage

/// Anonymous shared memory files (memfd_create): what the vcpufreq daemon
/// hands a VMM for the shared page and the read-only register mirror, and
/// what `VirtualMachine.addMemory` maps into the guest.
public enum MemFD {
    /// A new memfd of `size` bytes (zero-filled, close-on-exec). The caller owns the descriptor.
    public static func create(name: String, size: Int) throws(KVMError) -> FileDescriptor {
        guard size >= 0 else { throw .invalidArgument("memfd size \(size) is negative") }
        return FileDescriptor(rawValue: try KVMCall.memfdCreate(name: name, size: UInt64(size)))
    }
}
