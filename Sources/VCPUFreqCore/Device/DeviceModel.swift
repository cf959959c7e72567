/// The device a VM's guest sees, as a pure state machine over the VM's device
/// address space (`DeviceAddressMap`): the upstream `virtual-cpufreq`
/// windows, our util-hint windows, the doorbells, and the bounds of the
/// shared page region (whose memory the caller emulates).
///
/// Deterministic and free of I/O: an access returns what should happen
/// (`AccessResult`) and host-side state changes only through
/// `setCurrentPerformance` and `setAppliedUtilization`. Every array is
/// allocated in `init`; `access` allocates nothing, so it can sit on the
/// MMIO-exit hot path. Every answer to a bad access is in docs/abi.md.
public struct DeviceModel: Sendable {
    /// Per-vCPU registers and constants, one flat value per vCPU.
    struct VCPUState: Sendable {
        /// Where this vCPU's table starts in `tablesKHz`, and its length (1...64,
        /// guaranteed by `Topology.check()`).
        var tableStart: Int
        var tableLength: Int
        var maxPerformanceKHz: UInt32
        var performanceDomain: UInt32
        var capacity: UInt32
        /// What `cur_perf` / `cur_freq` return: set by the host only.
        var currentPerformanceKHz: UInt32
        /// `perftbl_sel` as last written, kept even when out of range.
        var perftblSel: UInt32 = 0
        /// `freqtbl_sel` as last written, kept even when out of range.
        var freqtblSel: UInt32 = 0
        /// What `applied_util` returns: set by the host only.
        var appliedUtilization: UInt16 = 0
    }

    public let tableMode: TableMode
    public let addressMap: DeviceAddressMap
    /// Highest utilization the host grants this VM (`util_cap`).
    public let utilCap: UInt32
    var vcpus: [VCPUState]
    /// Every vCPU's frequency table, ascending within each vCPU's range.
    let tablesKHz: [UInt32]
    public private(set) var counters: DeviceCounters

    public init(vm: VMModel) {
        var tables: [UInt32] = []
        var states: [VCPUState] = []
        states.reserveCapacity(vm.vcpuCount)
        for vcpu in vm.vcpus {
            // A checked topology never has an empty table; an unchecked one
            // still gets a defined device (a single entry of 1 kHz) instead of
            // a perftbl_len of 0 that would make the driver refuse to probe.
            let table = vcpu.frequenciesKHz.isEmpty ? [1] : vcpu.frequenciesKHz
            let length = min(table.count, UpstreamABI.maximumTableEntries)
            states.append(VCPUState(
                tableStart: tables.count, tableLength: length,
                maxPerformanceKHz: table[length - 1],
                performanceDomain: vcpu.performanceDomain,
                capacity: UInt32(clamping: vcpu.capacity),
                currentPerformanceKHz: table[length - 1]))
            tables.append(contentsOf: table.prefix(length))
        }
        self.tableMode = vm.tableMode
        self.addressMap = vm.addressMap
        self.utilCap = UInt32(clamping: min(max(vm.utilCap, 0), Int(UtilHintABI.maximumUtilization)))
        self.vcpus = states
        self.tablesKHz = tables
        self.counters = DeviceCounters(vcpuCount: states.count)
    }

    public var vcpuCount: Int { vcpus.count }

    /// Highest performance of `vcpu` (its highest table entry), 0 for a vCPU
    /// the VM does not have.
    public func maxPerformanceKHz(vcpu: Int) -> UInt32 {
        vcpus.indices.contains(vcpu) ? vcpus[vcpu].maxPerformanceKHz : 0
    }

    /// What `cur_perf` of `vcpu` returns now.
    public func currentPerformanceKHz(vcpu: Int) -> UInt32 {
        vcpus.indices.contains(vcpu) ? vcpus[vcpu].currentPerformanceKHz : 0
    }

    /// The frequency table `vcpu` presents (util-hint windows; the upstream
    /// windows in table mode), ascending. Empty for a vCPU the VM does not have.
    public func tableKHz(vcpu: Int) -> ArraySlice<UInt32> {
        guard vcpus.indices.contains(vcpu) else { return [] }
        let state = vcpus[vcpu]
        return tablesKHz[state.tableStart..<(state.tableStart + state.tableLength)]
    }

    // MARK: Host-side inputs

    /// Sets what `cur_perf` and `cur_freq` of `vcpu` return. Host-controlled,
    /// taken as is. Returns true when the value changed, i.e. the vCPU's
    /// read-only mirror needs a refresh. A vCPU the VM does not have is ignored.
    @discardableResult
    public mutating func setCurrentPerformance(vcpu: Int, kHz: UInt32) -> Bool {
        guard vcpus.indices.contains(vcpu), vcpus[vcpu].currentPerformanceKHz != kHz else { return false }
        vcpus[vcpu].currentPerformanceKHz = kHz
        return true
    }

    /// Sets what `applied_util` of `vcpu`'s util-hint window returns.
    public mutating func setAppliedUtilization(vcpu: Int, _ utilization: UInt16) {
        guard vcpus.indices.contains(vcpu) else { return }
        vcpus[vcpu].appliedUtilization = utilization
    }

    // MARK: Guest accesses

    /// Widths a VMM can report. Everything else is a malformed report.
    static func isReportableWidth(_ width: Int) -> Bool {
        width == 1 || width == 2 || width == 4 || width == 8
    }

    /// Serves one guest access. Never traps, never allocates.
    public mutating func access(_ access: GuestAccess) -> AccessResult {
        counters.countAccess()
        let result = dispatch(access)
        if let kind = result.invalid { counters.countInvalid(kind, vcpu: access.vcpu) }
        if result.request != nil { counters.countRequest(vcpu: access.vcpu) }
        if result.kick != nil { counters.countKick() }
        if result.sharedPageOffset != nil { counters.countSharedPageAccess() }
        if !access.isWrite, result.invalid == nil, result.sharedPageOffset == nil {
            counters.countRead(vcpu: access.vcpu)
        }
        return result
    }

    private mutating func dispatch(_ access: GuestAccess) -> AccessResult {
        guard Self.isReportableWidth(access.width) else { return .refused(.badWidth) }
        guard vcpus.indices.contains(access.vcpu) else { return .refused(.vcpuOutOfRange) }
        switch addressMap.region(ofOffset: access.offset) {
        case .unmapped:
            return .refused(.unmapped)
        case .beyondVCPUs:
            return .refused(.beyondLastVCPU)
        case .sharedPage(let offset):
            // Natural alignment keeps every emulated access inside one word
            // (or one 8-byte pair) and inside the region, whose size is a
            // multiple of 4 KiB.
            guard offset % UInt64(access.width) == 0 else { return .refused(.unaligned) }
            return AccessResult(sharedPageOffset: offset)
        case .doorbell(let index, let offset):
            guard offset == 0 else { return .refused(.unaligned) }
            guard access.isWrite else { return .refused(.readOfWriteOnly) }
            return AccessResult(kick: index)
        case .upstream(let vcpu, let offset):
            guard access.width == UpstreamABI.registerWidth else { return .refused(.badWidth) }
            guard offset % UInt64(UpstreamABI.registerWidth) == 0 else { return .refused(.unaligned) }
            guard let register = UpstreamABI.Register(rawValue: offset) else { return .refused(.unmapped) }
            return upstreamAccess(vcpu: vcpu, register: register, value: access.value)
        case .utilHint(let vcpu, let offset):
            guard access.width == UtilHintABI.registerWidth else { return .refused(.badWidth) }
            guard offset % UInt64(UtilHintABI.registerWidth) == 0 else { return .refused(.unaligned) }
            guard let register = UtilHintABI.Register(rawValue: offset) else { return .refused(.unmapped) }
            return utilHintAccess(vcpu: vcpu, register: register, value: access.value)
        }
    }

    /// Table entry `index` of `vcpu`, or nil past the table's end. `index`
    /// is guest-controlled: compared before any arithmetic.
    func tableEntry(vcpu: Int, index: UInt32) -> UInt32? {
        let state = vcpus[vcpu]
        guard UInt64(index) < UInt64(state.tableLength) else { return nil }
        return tablesKHz[state.tableStart + Int(index)]
    }

    /// The lowest table entry >= `kHz` (the cpufreq core's
    /// CPUFREQ_RELATION_L), or nil when `kHz` is above every entry.
    func tableEntryAtOrAbove(vcpu: Int, kHz: UInt32) -> UInt32? {
        let state = vcpus[vcpu]
        var low = state.tableStart, high = state.tableStart + state.tableLength
        while low < high {
            let middle = low + (high - low) / 2
            if tablesKHz[middle] < kHz { low = middle + 1 } else { high = middle }
        }
        return low < state.tableStart + state.tableLength ? tablesKHz[low] : nil
    }
}
