import Glibc

/// The kernel objects of one VM that must outlive every user of them: the VM
/// fd and the host mappings behind its memslots. Shared by the VM, its vCPU
/// workers and every `GuestMemoryRegion`, released with the last of them.
final class VMResources: @unchecked Sendable {
    let system: KVMSystem
    let fd: Int32
    private let lock = ConditionLock()
    private var mappings: [(address: UnsafeMutableRawPointer, size: Int)] = []
    private var slots: [GuestMemoryRegionRecord] = []

    struct GuestMemoryRegionRecord {
        var slot: UInt32
        var range: Range<UInt64>
    }

    init(system: KVMSystem) throws(KVMError) {
        self.system = system
        self.fd = try KVMCall.createVM(system.fd)
    }

    deinit {
        for mapping in mappings { munmap(mapping.address, mapping.size) }
        KVMCall.close(fd)
    }

    /// Maps `size` bytes shared: anonymous memory, or the file `fd` at `offset`.
    func map(size: Int, fd: Int32?, offset: Int64) throws(KVMError) -> UnsafeMutableRawPointer {
        let flags = fd == nil ? MAP_SHARED | MAP_ANONYMOUS : MAP_SHARED
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, flags, fd ?? -1, off_t(offset))
        guard let address, address != MAP_FAILED else {
            throw .systemCall(operation: "mmap", errno: .init(rawValue: errno))
        }
        lock.withLock { mappings.append((address, size)) }
        return address
    }

    /// Adds a memslot for `range` backed by `host`, refusing overlaps with
    /// existing slots (KVM's own refusal, EEXIST, says less).
    func addSlot(
        range: Range<UInt64>, host: UnsafeMutableRawPointer, readOnly: Bool
    ) throws(KVMError) -> UInt32 {
        try lock.withLock { () throws(KVMError) -> UInt32 in
            if let clash = slots.first(where: { $0.range.overlaps(range) }) {
                throw .invalidArgument(
                    "memory 0x\(String(range.lowerBound, radix: 16))..<0x\(String(range.upperBound, radix: 16)) "
                        + "overlaps memslot \(clash.slot)")
            }
            let slot = UInt32(slots.count)
            try KVMCall.setUserMemoryRegion(
                vm: fd, slot: slot, flags: readOnly ? KVMCall.memoryReadOnlyFlag : 0,
                guestPhysicalAddress: range.lowerBound, size: range.upperBound - range.lowerBound, host: host)
            slots.append(GuestMemoryRegionRecord(slot: slot, range: range))
            return slot
        }
    }
}
