import Logging
import SystemPackage

/// A minimal real KVM virtual machine: guest RAM at GPA 0 with identity page
/// tables and the guest script interpreter, extra memslots from memfds,
/// ioeventfd doorbells, and `vcpuCount` vCPUs, each with its own host thread.
/// Guest code runs as native 64-bit CPL3 code (the only kind a PVM host runs
/// without emulation); see docs/reference-vmm.md.
public final class VirtualMachine: @unchecked Sendable {
    public let system: KVMSystem
    public let layout: GuestLayout
    /// Guest RAM (memslot 0 at GPA 0), as the host sees it.
    public let ram: GuestMemoryRegion
    public let vcpus: [VCPU]
    /// Called on each vCPU's thread for exits to userspace.
    public let handler: any MMIOHandler
    let resources: VMResources
    private let logger: Logger

    /// Creates the VM, its RAM, page tables and interpreter, and its vCPUs
    /// with their threads (idle, TIDs known).
    /// - Throws: `KVMError.invalidArgument` (vCPU count, RAM size),
    ///   `.unsupportedArchitecture` off x86-64, `.systemCall` from KVM.
    public init(
        system: KVMSystem, vcpuCount: Int, ramSize: UInt64 = GuestLayout.defaultRAMSize,
        handler: any MMIOHandler = NullMMIOHandler(),
        logger: Logger = Logger(label: "vcpufreq.kvm")
    ) throws(KVMError) {
        #if !arch(x86_64)
            throw KVMError.unsupportedArchitecture
        #endif
        guard vcpuCount <= system.capabilities.maximumVCPUs else {
            throw .invalidArgument(
                "\(vcpuCount) vCPUs requested; KVM allows \(system.capabilities.maximumVCPUs) per VM")
        }
        let layout = try GuestLayout(vcpuCount: vcpuCount, ramSize: ramSize)
        let resources = try VMResources(system: system)
        let host = try resources.map(size: Int(ramSize), fd: nil, offset: 0)
        let ram = GuestMemoryRegion(
            guestPhysicalAddress: 0, size: Int(ramSize),
            slot: try resources.addSlot(range: 0..<ramSize, host: host, readOnly: false),
            isReadOnly: false, hostAddress: host, owner: resources)
        try Self.installPageTables(in: ram)
        try Self.installInterpreter(in: ram)
        var vcpus: [VCPU] = []
        for index in 0..<vcpuCount {
            let worker = try VCPUWorker(
                index: index, resources: resources, layout: layout, ram: ram, handler: handler, logger: logger)
            vcpus.append(try VCPU(worker: worker))
        }
        self.system = system
        self.layout = layout
        self.ram = ram
        self.vcpus = vcpus
        self.handler = handler
        self.resources = resources
        self.logger = logger
    }

    /// Opens `/dev/kvm` and creates a VM on it.
    public convenience init(
        vcpuCount: Int, ramSize: UInt64 = GuestLayout.defaultRAMSize, handler: any MMIOHandler = NullMMIOHandler()
    ) throws(KVMError) {
        try self.init(system: KVMSystem(), vcpuCount: vcpuCount, ramSize: ramSize, handler: handler)
    }

    /// Identity-maps [0, 1 GiB) with 2 MiB pages, user-accessible (the guest
    /// runs at CPL3): PML4[0] -> PDPT[0] -> one page directory of 512 entries.
    private static func installPageTables(in ram: GuestMemoryRegion) throws(KVMError) {
        let present: UInt64 = 1 << 0, writable: UInt64 = 1 << 1, user: UInt64 = 1 << 2
        let largePage: UInt64 = 1 << 7
        let table = present | writable | user
        ram.store64(GuestLayout.pdptAddress | table, at: Int(GuestLayout.pml4Address))
        ram.store64(GuestLayout.pageDirectoryAddress | table, at: Int(GuestLayout.pdptAddress))
        for entry in 0..<512 {
            ram.store64(
                UInt64(entry) << 21 | table | largePage,
                at: Int(GuestLayout.pageDirectoryAddress) + 8 * entry)
        }
    }

    private static func installInterpreter(in ram: GuestMemoryRegion) throws(KVMError) {
        let code = KVMCall.guestCode()
        guard code.count > 0 else { throw .unsupportedArchitecture }
        guard code.count <= GuestLayout.codeCapacity else {
            throw .invalidArgument("the guest interpreter (\(code.count) bytes) outgrew its area")
        }
        UnsafeMutableRawBufferPointer(rebasing: ram.bytes[Int(GuestLayout.codeAddress)...])
            .copyMemory(from: code)
    }

    // MARK: Memory

    /// Maps `size` bytes of `memfd` from `offset` into the guest at `gpa`
    /// (KVM_SET_USER_MEMORY_REGION). Read-only slots (KVM_MEM_READONLY) are
    /// what the vcpufreq read-only register mirror uses: guest loads never
    /// exit, guest stores exit to the handler as MMIO writes. The host
    /// mapping is always writable.
    /// - Throws: `KVMError.invalidArgument` for unaligned or overlapping
    ///   ranges, `.systemCall` from mmap or KVM.
    public func addMemory(
        gpa: UInt64, size: Int, from memfd: FileDescriptor, offset: Int64 = 0, readOnly: Bool
    ) throws(KVMError) -> GuestMemoryRegion {
        let page = GuestLayout.pageSize
        guard size > 0, UInt64(size) % page == 0, gpa % page == 0, UInt64(offset) % page == 0, offset >= 0
        else {
            throw .invalidArgument(
                "memory at 0x\(String(gpa, radix: 16)) size 0x\(String(size, radix: 16)) offset \(offset) "
                    + "is not page-aligned")
        }
        let (end, overflow) = gpa.addingReportingOverflow(UInt64(size))
        guard !overflow else { throw .invalidArgument("memory at 0x\(String(gpa, radix: 16)) wraps around") }
        let host = try resources.map(size: size, fd: memfd.rawValue, offset: offset)
        let slot = try resources.addSlot(range: gpa..<end, host: host, readOnly: readOnly)
        return GuestMemoryRegion(
            guestPhysicalAddress: gpa, size: size, slot: slot, isReadOnly: readOnly, hostAddress: host,
            owner: resources)
    }

    // MARK: ioeventfd

    /// Makes guest writes of `length` bytes at `gpa` (or `port`, see
    /// `IOEventFDRegistration.Space`) signal `eventfd` inside KVM, with no exit
    /// to userspace: the doorbell path. KVM discards the value written; with
    /// `datamatch` only writes of that value signal. `length` 0 matches any
    /// width (KVM_CAP_IOEVENTFD_ANY_LENGTH).
    public func registerIOEventFD(
        gpa: UInt64, length: Int, eventfd: FileDescriptor, datamatch: UInt64? = nil,
        space: IOEventFDRegistration.Space = .memory
    ) throws(KVMError) -> IOEventFDRegistration {
        guard [0, 1, 2, 4, 8].contains(length) else {
            throw .invalidArgument("ioeventfd length \(length) is not 0, 1, 2, 4 or 8")
        }
        guard length != 0 || datamatch == nil else {
            throw .invalidArgument("an ioeventfd with datamatch needs a length")
        }
        let registration = IOEventFDRegistration(
            address: gpa, length: length, eventfd: eventfd, datamatch: datamatch, space: space)
        try KVMCall.ioeventfd(
            vm: resources.fd, address: gpa, length: UInt32(length), eventfd: eventfd.rawValue,
            flags: registration.flags, datamatch: datamatch ?? 0)
        return registration
    }

    /// Removes a registration (KVM_IOEVENTFD_FLAG_DEASSIGN).
    public func deregisterIOEventFD(_ registration: IOEventFDRegistration) throws(KVMError) {
        try KVMCall.ioeventfd(
            vm: resources.fd, address: registration.address, length: UInt32(registration.length),
            eventfd: registration.eventfd.rawValue, flags: registration.flags | KVMCall.ioeventfdDeassignFlag,
            datamatch: registration.datamatch ?? 0)
    }

    // MARK: Running

    /// Runs `scripts[i]` on vCPU `i`, all at once, and collects every run
    /// within one `timeout`. Fewer scripts than vCPUs leave the rest idle;
    /// a script beyond the last vCPU fails with `.invalidArgument`.
    public func run(_ scripts: [GuestScript], timeout: Duration = .seconds(10)) -> [Result<GuestRunResult, KVMError>] {
        let count = min(scripts.count, vcpus.count)
        let surplus = scripts.count - count
        var started: [KVMError?] = []
        for index in 0..<count {
            do throws(KVMError) {
                try vcpus[index].start(script: scripts[index])
                started.append(nil)
            } catch {
                started.append(error)
            }
        }
        let deadline = VCPU.deadline(after: timeout)
        let results = (0..<count).map { index in
            if let error = started[index] { return Result<GuestRunResult, KVMError>.failure(error) }
            return Result { () throws(KVMError) in try vcpus[index].wait(deadline: deadline, timeout: timeout) }
        }
        let refused = Result<GuestRunResult, KVMError>.failure(
            .invalidArgument("\(scripts.count) scripts for \(vcpus.count) vCPUs"))
        return results + Array(repeating: refused, count: surplus)
    }
}
