extension DeviceAddressMap {
    /// A human name for a device-space offset, for traces and logs:
    /// `cpu3.perftbl_rd`, `util2.cur_freq`, `slot1.utilization`, `doorbell4`.
    /// Not for the hot path (builds a String).
    public func name(ofOffset offset: UInt64) -> String {
        switch region(ofOffset: offset) {
        case .upstream(let vcpu, let register):
            let name = UpstreamABI.Register(rawValue: register)?.name ?? "+0x\(String(register, radix: 16))"
            return "cpu\(vcpu).\(name)"
        case .utilHint(let vcpu, let register):
            let name = UtilHintABI.Register(rawValue: register)?.name ?? "+0x\(String(register, radix: 16))"
            return "util\(vcpu).\(name)"
        case .sharedPage(let offset):
            return Self.sharedPageName(Int(offset))
        case .doorbell(let index, let byte):
            return byte == 0 ? "doorbell\(index)" : "doorbell\(index)+\(byte)"
        case .beyondVCPUs(let vcpu):
            return "beyond-vm(vcpu \(vcpu))"
        case .unmapped:
            return "unmapped"
        }
    }

    private static func sharedPageName(_ offset: Int) -> String {
        typealias H = SharedPageABI.Header
        typealias S = SharedPageABI.Slot
        if offset < SharedPageABI.headerSize {
            let fields = [
                H.magic: "magic", H.version: "version", H.features: "features", H.hostStatus: "host_status",
                H.vcpuCount: "vcpu_count", H.slotOffset: "slot_offset", H.slotSize: "slot_size",
                H.pollIntervalMicroseconds: "poll_interval_us", H.generation: "generation", H.doorbellCount: "doorbell_count",
            ]
            return "header." + (fields[offset] ?? "+0x\(String(offset, radix: 16))")
        }
        let slot = (offset - SharedPageABI.headerSize) / SharedPageABI.slotSize
        let field = (offset - SharedPageABI.headerSize) % SharedPageABI.slotSize
        let fields = [
            S.sequence: "sequence", S.flags: "flags", S.utilization: "utilization", S.performanceKHz: "perf_khz",
            S.hostSequence: "host_sequence", S.currentPerformanceKHz: "cur_perf_khz", S.appliedClamp: "applied_clamp",
            S.hostFlags: "host_flags", S.acknowledgedSequence: "acked_sequence", S.appliedSliceMicroseconds: "applied_slice_us",
        ]
        return "slot\(slot)." + (fields[field] ?? "+0x\(String(field, radix: 16))")
    }
}
