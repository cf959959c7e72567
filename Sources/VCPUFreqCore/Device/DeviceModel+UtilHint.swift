/// The util-hint windows (docs/abi.md, "ABI 2"): the 2023 RFC's util_hint /
/// get_cur_cpufreq / get_freqtbl hypercalls as 32-bit registers.
extension DeviceModel {
    /// What a read of `register` in `vcpu`'s util-hint window returns, and why
    /// it is refused if it is. No side effect.
    func utilHintRead(vcpu: Int, register: UtilHintABI.Register) -> (value: UInt32, invalid: InvalidAccess?) {
        let state = vcpus[vcpu]
        switch register {
        case .curFreq:
            return (state.currentPerformanceKHz, nil)
        case .freqtblLen:
            return (UInt32(state.tableLength), nil)
        case .freqtblRd:
            guard let entry = tableEntry(vcpu: vcpu, index: state.freqtblSel) else { return (0, .tableIndexOutOfRange) }
            return (entry, nil)
        case .capacity:
            return (state.capacity, nil)
        case .utilCap:
            return (utilCap, nil)
        case .appliedUtil:
            return (UInt32(state.appliedUtilization), nil)
        case .utilHint, .freqtblSel:
            return (0, .readOfWriteOnly)
        }
    }

    /// What a read of `register` in `vcpu`'s util-hint window would return,
    /// without side effects or counting (0 for write-only registers).
    public func utilHintValue(vcpu: Int, register: UtilHintABI.Register) -> UInt32 {
        guard vcpus.indices.contains(vcpu) else { return 0 }
        return utilHintRead(vcpu: vcpu, register: register).value
    }

    mutating func utilHintAccess(vcpu: Int, register: UtilHintABI.Register, value: UInt64?) -> AccessResult {
        guard let value else {
            let read = utilHintRead(vcpu: vcpu, register: register)
            return AccessResult(value: UInt64(read.value), invalid: read.invalid)
        }
        let written = UInt32(truncatingIfNeeded: value)
        switch register {
        case .utilHint:
            // 1024 is the host's fastest CPU at its highest frequency; more
            // is meaningless and clamped (and counted) rather than refused,
            // so a guest asking for "everything" still gets the maximum.
            let limit = UtilHintABI.maximumUtilization
            let utilization = min(written, limit)
            let request = GuestRequest(vcpu: vcpu, utilization: utilization, source: .utilHintRegister)
            return AccessResult(request: request, invalid: written > limit ? .utilizationAboveMax : nil)
        case .freqtblSel:
            vcpus[vcpu].freqtblSel = written
            return AccessResult()
        case .curFreq, .freqtblLen, .freqtblRd, .capacity, .utilCap, .appliedUtil:
            return .refused(.writeToReadOnly)
        }
    }
}
