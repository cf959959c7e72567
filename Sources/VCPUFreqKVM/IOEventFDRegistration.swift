import SystemPackage

/// One KVM_IOEVENTFD registration; pass it back to
/// `VirtualMachine.deregisterIOEventFD` (KVM matches every field).
public struct IOEventFDRegistration: Sendable, Equatable {
    /// Which guest address space the registration watches.
    public enum Space: Sendable, Equatable {
        /// Guest-physical memory (MMIO).
        case memory
        /// Port I/O (KVM_IOEVENTFD_FLAG_PIO); the address is the port.
        case port
    }

    public var address: UInt64
    public var length: Int
    public var eventfd: FileDescriptor
    public var datamatch: UInt64?
    public var space: Space

    var flags: UInt32 {
        (datamatch == nil ? 0 : KVMCall.ioeventfdDatamatchFlag) | (space == .port ? KVMCall.ioeventfdPortFlag : 0)
    }
}
