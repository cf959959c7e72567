// The one Swift file that imports the C shim. Everything else in the module
// calls these wrappers, which turn the shim's "-errno on failure" results into
// typed errors and keep C types out of every other file.
import CVCPUFreqKVM
import Glibc
import SystemPackage

/// Raw register file of a vCPU (x86-64 general-purpose registers).
struct GuestRegisters: Sendable, Equatable {
    var rax: UInt64 = 0, rbx: UInt64 = 0, rcx: UInt64 = 0, rdx: UInt64 = 0
    var rsi: UInt64 = 0, rdi: UInt64 = 0, rsp: UInt64 = 0, rbp: UInt64 = 0
    var r8: UInt64 = 0, r9: UInt64 = 0, r10: UInt64 = 0, r11: UInt64 = 0
    var r12: UInt64 = 0, r13: UInt64 = 0, r14: UInt64 = 0, r15: UInt64 = 0
    var rip: UInt64 = 0
    /// Bit 1 is reserved and must be set.
    var rflags: UInt64 = 0x2
}

/// One MMIO exit, decoded from the kvm_run page.
struct MMIOExit {
    var guestPhysicalAddress: UInt64
    var data: UInt64
    var width: Int
    var isWrite: Bool
}

/// One port I/O exit, decoded from the kvm_run page.
struct PortIOExit {
    var port: UInt16
    var width: Int
    var isOut: Bool
    var count: UInt32
}

enum KVMCall {
    static let apiVersion = Int(VCPUFREQ_KVM_API_VERSION)

    /// KVM_CHECK_EXTENSION capability numbers.
    enum Capability {
        static let recommendedVCPUs = UInt32(VCPUFREQ_KVM_CAP_NR_VCPUS)
        static let coalescedMMIO = UInt32(VCPUFREQ_KVM_CAP_COALESCED_MMIO)
        static let ioeventfd = UInt32(VCPUFREQ_KVM_CAP_IOEVENTFD)
        static let maximumVCPUs = UInt32(VCPUFREQ_KVM_CAP_MAX_VCPUS)
        static let readOnlyMemory = UInt32(VCPUFREQ_KVM_CAP_READONLY_MEM)
        static let ioeventfdAnyLength = UInt32(VCPUFREQ_KVM_CAP_IOEVENTFD_ANY_LENGTH)
        static let immediateExit = UInt32(VCPUFREQ_KVM_CAP_IMMEDIATE_EXIT)
    }

    static let memoryReadOnlyFlag = UInt32(VCPUFREQ_KVM_MEM_READONLY)
    static let ioeventfdDatamatchFlag = UInt32(VCPUFREQ_KVM_IOEVENTFD_DATAMATCH)
    static let ioeventfdPortFlag = UInt32(VCPUFREQ_KVM_IOEVENTFD_PIO)
    static let ioeventfdDeassignFlag = UInt32(VCPUFREQ_KVM_IOEVENTFD_DEASSIGN)

    /// Turns a shim result into a value or a `KVMError.systemCall`.
    @inline(__always)
    static func check(_ result: Int32, _ operation: String) throws(KVMError) -> Int32 {
        if result >= 0 { return result }
        throw KVMError.systemCall(operation: operation, errno: Errno(rawValue: -result))
    }

    /// Opens a device; the raw errno on failure (the caller classifies it).
    static func open(path: String) -> Result<Int32, Errno> {
        let result = vcpufreq_kvm_open(path)
        return result >= 0 ? .success(result) : .failure(Errno(rawValue: -result))
    }

    static func close(_ fd: Int32) { _ = vcpufreq_kvm_close(fd) }

    static func apiVersion(_ kvm: Int32) throws(KVMError) -> Int {
        Int(try check(vcpufreq_kvm_get_api_version(kvm), "KVM_GET_API_VERSION"))
    }

    /// KVM_CHECK_EXTENSION; a failing check counts as "absent".
    static func checkExtension(_ fd: Int32, _ capability: UInt32) -> Int {
        Int(max(0, vcpufreq_kvm_check_extension(fd, capability)))
    }

    static func createVM(_ kvm: Int32) throws(KVMError) -> Int32 {
        try check(vcpufreq_kvm_create_vm(kvm), "KVM_CREATE_VM")
    }

    static func vcpuMmapSize(_ kvm: Int32) throws(KVMError) -> Int {
        Int(try check(vcpufreq_kvm_vcpu_mmap_size(kvm), "KVM_GET_VCPU_MMAP_SIZE"))
    }

    static func setUserMemoryRegion(
        vm: Int32, slot: UInt32, flags: UInt32, guestPhysicalAddress: UInt64, size: UInt64,
        host: UnsafeMutableRawPointer
    ) throws(KVMError) {
        _ = try check(
            vcpufreq_kvm_set_user_memory_region(vm, slot, flags, guestPhysicalAddress, size, host),
            "KVM_SET_USER_MEMORY_REGION")
    }

    static func ioeventfd(
        vm: Int32, address: UInt64, length: UInt32, eventfd: Int32, flags: UInt32, datamatch: UInt64
    ) throws(KVMError) {
        _ = try check(
            vcpufreq_kvm_ioeventfd(vm, address, length, eventfd, flags, datamatch), "KVM_IOEVENTFD")
    }

    static func createVCPU(vm: Int32, id: UInt32) throws(KVMError) -> Int32 {
        try check(vcpufreq_kvm_create_vcpu(vm, id), "KVM_CREATE_VCPU")
    }

    static func setSupportedCPUID(kvm: Int32, vcpu: Int32) throws(KVMError) {
        _ = try check(vcpufreq_kvm_set_supported_cpuid(kvm, vcpu), "KVM_SET_CPUID2")
    }

    static func enterUserLongMode(vcpu: Int32, pageTableRoot: UInt64) throws(KVMError) {
        _ = try check(vcpufreq_kvm_enter_user_long_mode(vcpu, pageTableRoot), "KVM_SET_SREGS")
    }

    static func getRegisters(vcpu: Int32) throws(KVMError) -> GuestRegisters {
        var raw = vcpufreq_kvm_regs()
        _ = try check(vcpufreq_kvm_get_regs(vcpu, &raw), "KVM_GET_REGS")
        return GuestRegisters(
            rax: raw.rax, rbx: raw.rbx, rcx: raw.rcx, rdx: raw.rdx,
            rsi: raw.rsi, rdi: raw.rdi, rsp: raw.rsp, rbp: raw.rbp,
            r8: raw.r8, r9: raw.r9, r10: raw.r10, r11: raw.r11,
            r12: raw.r12, r13: raw.r13, r14: raw.r14, r15: raw.r15,
            rip: raw.rip, rflags: raw.rflags)
    }

    static func setRegisters(vcpu: Int32, _ r: GuestRegisters) throws(KVMError) {
        var raw = vcpufreq_kvm_regs(
            rax: r.rax, rbx: r.rbx, rcx: r.rcx, rdx: r.rdx,
            rsi: r.rsi, rdi: r.rdi, rsp: r.rsp, rbp: r.rbp,
            r8: r.r8, r9: r.r9, r10: r.r10, r11: r.r11,
            r12: r.r12, r13: r.r13, r14: r.r14, r15: r.r15,
            rip: r.rip, rflags: r.rflags)
        _ = try check(vcpufreq_kvm_set_regs(vcpu, &raw), "KVM_SET_REGS")
    }

    // MARK: Hot path: one call per guest exit, no allocation.

    /// KVM_RUN: 0, or -errno (-EINTR when kicked).
    @inline(__always)
    static func run(vcpu: Int32) -> Int32 { vcpufreq_kvm_run(vcpu) }

    @inline(__always)
    static func exitReason(_ run: UnsafeMutableRawPointer) -> UInt32 {
        vcpufreq_kvm_run_exit_reason(run)
    }

    @inline(__always)
    static func mmio(_ run: UnsafeMutableRawPointer) -> MMIOExit {
        var raw = vcpufreq_kvm_mmio()
        vcpufreq_kvm_run_mmio(run, &raw)
        return MMIOExit(
            guestPhysicalAddress: raw.guest_physical_address, data: raw.data,
            width: Int(raw.length), isWrite: raw.is_write != 0)
    }

    @inline(__always)
    static func setMMIOData(_ run: UnsafeMutableRawPointer, _ value: UInt64) {
        vcpufreq_kvm_run_set_mmio_data(run, value)
    }

    @inline(__always)
    static func portIO(_ run: UnsafeMutableRawPointer) -> PortIOExit {
        var raw = vcpufreq_kvm_io()
        vcpufreq_kvm_run_io(run, &raw)
        return PortIOExit(port: raw.port, width: Int(raw.size), isOut: raw.is_out != 0, count: raw.count)
    }

    /// Access `index` of a port exit; nil when the kernel's offsets fall outside the mapping.
    @inline(__always)
    static func portData(_ run: UnsafeMutableRawPointer, runSize: Int, index: UInt32) -> UInt64? {
        var value: UInt64 = 0
        return vcpufreq_kvm_run_io_get(run, runSize, index, &value) == 0 ? value : nil
    }

    @inline(__always)
    static func setPortData(_ run: UnsafeMutableRawPointer, runSize: Int, index: UInt32, _ value: UInt64) {
        _ = vcpufreq_kvm_run_io_set(run, runSize, index, value)
    }

    static func exitDetail(_ run: UnsafeMutableRawPointer) -> [UInt64] {
        var raw = vcpufreq_kvm_exit_detail()
        vcpufreq_kvm_run_exit_detail(run, &raw)
        return [raw.word.0, raw.word.1, raw.word.2, raw.word.3]
    }

    @inline(__always)
    static func setImmediateExit(_ run: UnsafeMutableRawPointer, _ on: Bool) {
        vcpufreq_kvm_run_set_immediate_exit(run, on ? 1 : 0)
    }

    // MARK: Threads, signals, files

    static func currentThreadID() -> pid_t { vcpufreq_kvm_gettid() }

    static func setCurrentThreadName(_ name: String) { _ = vcpufreq_kvm_set_thread_name(name) }

    static func setCurrentTimerSlack(nanoseconds: UInt) { _ = vcpufreq_kvm_set_timer_slack(nanoseconds) }

    /// The watchdog's signal, with its do-nothing handler installed once per process.
    static let kickSignal: Int32 = {
        let signal = vcpufreq_kvm_kick_signal()
        _ = vcpufreq_kvm_install_kick_handler(signal)
        return signal
    }()

    static func unblockKickSignal() { _ = vcpufreq_kvm_unblock_signal(kickSignal) }

    static func kick(_ thread: pthread_t) { _ = vcpufreq_kvm_kick_thread(thread, kickSignal) }

    static func memfdCreate(name: String, size: UInt64) throws(KVMError) -> Int32 {
        try check(vcpufreq_kvm_memfd_create(name, size), "memfd_create")
    }

    static func eventfdCreate(nonBlocking: Bool) throws(KVMError) -> Int32 {
        try check(vcpufreq_kvm_eventfd_create(nonBlocking ? 1 : 0), "eventfd")
    }

    /// The guest interpreter's bytes (empty on hosts other than x86-64).
    static func guestCode() -> UnsafeRawBufferPointer {
        var size = 0
        let start = vcpufreq_kvm_guest_code(&size)
        return UnsafeRawBufferPointer(start: start, count: size)
    }

    // MARK: Shared memory

    @inline(__always)
    static func load32(_ address: UnsafeRawPointer) -> UInt32 { vcpufreq_kvm_load32_acquire(address) }
    @inline(__always)
    static func store32(_ address: UnsafeMutableRawPointer, _ value: UInt32) {
        vcpufreq_kvm_store32_release(address, value)
    }
    @inline(__always)
    static func load64(_ address: UnsafeRawPointer) -> UInt64 { vcpufreq_kvm_load64_acquire(address) }
    @inline(__always)
    static func store64(_ address: UnsafeMutableRawPointer, _ value: UInt64) {
        vcpufreq_kvm_store64_release(address, value)
    }
    @inline(__always)
    static func counterAdd(_ counter: UnsafeMutablePointer<UInt64>, _ amount: UInt64) {
        vcpufreq_kvm_counter_add(counter, amount)
    }
    @inline(__always)
    static func counterLoad(_ counter: UnsafeMutablePointer<UInt64>) -> UInt64 {
        vcpufreq_kvm_counter_load(counter)
    }
}
