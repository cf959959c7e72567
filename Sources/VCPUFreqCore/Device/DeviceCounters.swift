/// What a VM's guest did to its device, for `vcpufreq status` and the
/// benchmarks: totals per invalid-access kind and per-vCPU activity. All
/// storage is allocated once, when the device model is built; counting is
/// wrapping arithmetic, so a guest cannot make a counter trap.
public struct DeviceCounters: Equatable, Sendable {
    /// Every access, valid or not.
    public private(set) var accesses: UInt64 = 0
    /// Valid register reads.
    public private(set) var reads: UInt64 = 0
    /// Requests handed to the policy.
    public private(set) var requests: UInt64 = 0
    /// Doorbell writes that reached the device model.
    public private(set) var kicks: UInt64 = 0
    /// Accesses passed back to the caller as shared page memory accesses.
    public private(set) var sharedPageAccesses: UInt64 = 0
    /// Indexed by `InvalidAccess.rawValue`.
    private var invalidByKind: [UInt64]
    /// Per executing vCPU (`GuestAccess.vcpu`); accesses from an
    /// out-of-range vCPU only count in the totals.
    private var requestsByVCPU: [UInt64]
    private var invalidByVCPU: [UInt64]
    private var readsByVCPU: [UInt64]

    public init(vcpuCount: Int) {
        let count = max(0, vcpuCount)
        invalidByKind = Array(repeating: 0, count: InvalidAccess.allCases.count)
        requestsByVCPU = Array(repeating: 0, count: count)
        invalidByVCPU = Array(repeating: 0, count: count)
        readsByVCPU = Array(repeating: 0, count: count)
    }

    /// Accesses flagged with this kind.
    public subscript(kind: InvalidAccess) -> UInt64 { invalidByKind[kind.rawValue] }

    /// Accesses flagged invalid, all kinds together.
    public var invalidTotal: UInt64 { invalidByKind.reduce(0, &+) }

    public func requests(vcpu: Int) -> UInt64 { requestsByVCPU.indices.contains(vcpu) ? requestsByVCPU[vcpu] : 0 }
    public func invalid(vcpu: Int) -> UInt64 { invalidByVCPU.indices.contains(vcpu) ? invalidByVCPU[vcpu] : 0 }
    public func reads(vcpu: Int) -> UInt64 { readsByVCPU.indices.contains(vcpu) ? readsByVCPU[vcpu] : 0 }

    mutating func countAccess() { accesses &+= 1 }

    mutating func countInvalid(_ kind: InvalidAccess, vcpu: Int) {
        invalidByKind[kind.rawValue] &+= 1
        if invalidByVCPU.indices.contains(vcpu) { invalidByVCPU[vcpu] &+= 1 }
    }

    mutating func countRead(vcpu: Int) {
        reads &+= 1
        if readsByVCPU.indices.contains(vcpu) { readsByVCPU[vcpu] &+= 1 }
    }

    mutating func countRequest(vcpu: Int) {
        requests &+= 1
        if requestsByVCPU.indices.contains(vcpu) { requestsByVCPU[vcpu] &+= 1 }
    }

    mutating func countKick() { kicks &+= 1 }
    mutating func countSharedPageAccess() { sharedPageAccesses &+= 1 }
}
