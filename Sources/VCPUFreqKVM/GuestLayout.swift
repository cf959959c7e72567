/// Where things live in the guest-physical address space of a reference VM.
///
/// The page tables identity-map the first 1 GiB with 2 MiB user pages, so a
/// guest address equals its guest-physical address and every address a
/// script uses must be below `addressableLimit`. RAM is one memslot at GPA 0:
///
///     0x0000_1000  page tables (PML4, PDPT, PD)
///     0x0001_0000  guest interpreter code (copied from the C target)
///     0x0002_0000  per-vCPU areas, 64 KiB each: script, results, stack
///     after them   scratch RAM free for scripts and tests, up to `ramSize`
///
/// Above RAM lies unbacked space: accesses there exit as MMIO unless a
/// memslot (`VirtualMachine.addMemory`) or an ioeventfd claims them. The last
/// page below 1 GiB is the DONE page: the interpreter's write there ends a run;
/// the page below it is the IDLE page: a write there halts the vCPU (below).
public struct GuestLayout: Sendable, Equatable {
    /// End of the identity map: 512 × 2 MiB pages of one page directory.
    public static let addressableLimit: UInt64 = 1 << 30
    /// The interpreter's 32-bit write here ends a run. Never passed to the
    /// `MMIOHandler`; keep devices out of this page.
    public static let doneAddress: UInt64 = addressableLimit - 0x1000
    public static let pageSize: UInt64 = 0x1000
    /// A guest store here is how this VMM's CPL3 guests idle, since `hlt`
    /// does not exist at CPL3: the value is how long to idle, in ns; the
    /// vCPU thread sleeps that long (at most `maximumIdle`) without any
    /// timer slack, then re-enters the guest. The stand-in for `hlt` with a
    /// programmed timer (a VMX/SVM host blocks a halted vCPU in the kernel
    /// until its timer fires). Never passed to the `MMIOHandler`; counted as
    /// `ExitCounts.idle`, not as an MMIO write.
    public static let idleAddress: UInt64 = doneAddress - 0x1000
    /// The longest one idle store sleeps: the value is guest-controlled, and
    /// a guest must not park its thread beyond the watchdog's reach (a stop
    /// request interrupts the sleep anyway). Longer idles take several stores.
    public static let maximumIdle: Duration = .seconds(1)

    static let pml4Address: UInt64 = 0x1000
    static let pdptAddress: UInt64 = 0x2000
    static let pageDirectoryAddress: UInt64 = 0x3000
    /// Where the interpreter's code starts (every run's first rip).
    public static let codeAddress: UInt64 = 0x1_0000
    /// Bytes reserved for the interpreter's code.
    public static let codeCapacity = 0x1_0000
    static let vcpuAreaBase: UInt64 = 0x2_0000
    static let vcpuAreaSize: UInt64 = 0x1_0000
    /// Script at the start of a vCPU area: `maximumScriptOps` ops of 32 bytes.
    static let scriptOffset: UInt64 = 0
    /// Results after the script: a 16-byte header and 16 bytes per op.
    static let resultsOffset: UInt64 = 0x8000
    /// The stack grows down from the end of the vCPU area, above the results.
    static let stackTopOffset: UInt64 = 0x1_0000

    /// Ops one script may hold, its final END included: what fits in the
    /// 32 KiB script area.
    public static let maximumScriptOps = Int(resultsOffset - scriptOffset) / GuestScriptABI.opSize

    /// Guest RAM a VM gets unless told otherwise: below the customary
    /// virtual-cpufreq base (`DeviceAddressMap.defaultBase`, 16.25 MiB), so
    /// the device's windows stay unbacked.
    public static let defaultRAMSize: UInt64 = 8 << 20

    public let vcpuCount: Int
    public let ramSize: UInt64

    /// - Throws: `KVMError.invalidArgument` when `ramSize` is not whole pages,
    ///   cannot hold the vCPU areas, or reaches the DONE page.
    public init(vcpuCount: Int, ramSize: UInt64) throws(KVMError) {
        guard vcpuCount >= 1 else { throw .invalidArgument("a VM needs at least one vCPU, not \(vcpuCount)") }
        guard ramSize % Self.pageSize == 0 else {
            throw .invalidArgument("RAM size 0x\(String(ramSize, radix: 16)) is not a multiple of 4 KiB")
        }
        let minimum = Self.minimumRAMSize(vcpuCount: vcpuCount)
        guard ramSize >= minimum else {
            throw .invalidArgument(
                "RAM size 0x\(String(ramSize, radix: 16)) is below the 0x\(String(minimum, radix: 16)) "
                    + "\(vcpuCount) vCPUs need")
        }
        guard ramSize <= Self.doneAddress else {
            throw .invalidArgument("RAM size 0x\(String(ramSize, radix: 16)) reaches the DONE page")
        }
        self.vcpuCount = vcpuCount
        self.ramSize = ramSize
    }

    /// The smallest RAM holding the page tables, code and `vcpuCount` vCPU areas.
    public static func minimumRAMSize(vcpuCount: Int) -> UInt64 {
        vcpuAreaBase + vcpuAreaSize * UInt64(max(vcpuCount, 1))
    }

    /// RAM no part of the VMM uses: free for scripts (RAM reads/writes,
    /// publish slots) and tests.
    public var scratch: Range<UInt64> { Self.minimumRAMSize(vcpuCount: vcpuCount)..<ramSize }

    func vcpuArea(_ vcpu: Int) -> UInt64 { Self.vcpuAreaBase + Self.vcpuAreaSize * UInt64(vcpu) }
    func scriptAddress(_ vcpu: Int) -> UInt64 { vcpuArea(vcpu) + Self.scriptOffset }
    func resultsAddress(_ vcpu: Int) -> UInt64 { vcpuArea(vcpu) + Self.resultsOffset }
    func stackTop(_ vcpu: Int) -> UInt64 { vcpuArea(vcpu) + Self.stackTopOffset }
}
