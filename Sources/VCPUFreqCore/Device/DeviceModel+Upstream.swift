/// The upstream `virtual-cpufreq` windows: exactly what
/// drivers/cpufreq/virtual-cpufreq.c expects (docs/abi.md, "ABI 1").
extension DeviceModel {
    /// `perftbl_len` of `vcpu`: the table's length in table mode, 1 (max
    /// only) otherwise. Never 0 and never above 64: the driver's probe fails
    /// on either, for every CPU at once.
    func perftblLength(vcpu: Int) -> UInt32 {
        switch tableMode {
        case .table: return UInt32(vcpus[vcpu].tableLength)
        case .maxOnly: return 1
        }
    }

    /// What a read of `register` in `vcpu`'s window returns, and why it is
    /// refused if it is. No side effect: shared by guest reads and the mirror.
    func upstreamRead(vcpu: Int, register: UpstreamABI.Register) -> (value: UInt32, invalid: InvalidAccess?) {
        let state = vcpus[vcpu]
        switch register {
        case .curPerf:
            return (state.currentPerformanceKHz, nil)
        case .perftblLen:
            return (perftblLength(vcpu: vcpu), nil)
        case .perftblRd:
            switch tableMode {
            case .table:
                guard let entry = tableEntry(vcpu: vcpu, index: state.perftblSel) else { return (0, .tableIndexOutOfRange) }
                return (entry, nil)
            case .maxOnly:
                guard state.perftblSel == 0 else { return (0, .tableIndexOutOfRange) }
                return (state.maxPerformanceKHz, nil)
            }
        case .perfDomain:
            return (state.performanceDomain, nil)
        case .setPerf, .perftblSel:
            return (0, .readOfWriteOnly)
        }
    }

    /// What a read of `register` in `vcpu`'s window would return now, without
    /// side effects or counting: the content of the read-only mirror page.
    /// Write-only registers, refused reads and unknown vCPUs read as 0.
    public func mirrorValue(vcpu: Int, register: UpstreamABI.Register) -> UInt32 {
        guard vcpus.indices.contains(vcpu) else { return 0 }
        return upstreamRead(vcpu: vcpu, register: register).value
    }

    mutating func upstreamAccess(vcpu: Int, register: UpstreamABI.Register, value: UInt64?) -> AccessResult {
        guard let value else {
            let read = upstreamRead(vcpu: vcpu, register: register)
            return AccessResult(value: UInt64(read.value), invalid: read.invalid)
        }
        let written = UInt32(truncatingIfNeeded: value)
        switch register {
        case .setPerf:
            return setPerf(vcpu: vcpu, kHz: written)
        case .perftblSel:
            let before = upstreamRead(vcpu: vcpu, register: .perftblRd).value
            vcpus[vcpu].perftblSel = written
            let after = upstreamRead(vcpu: vcpu, register: .perftblRd).value
            return AccessResult(mirrorChanged: before == after ? nil : vcpu)
        case .curPerf, .perftblLen, .perftblRd, .perfDomain:
            return .refused(.writeToReadOnly)
        }
    }

    /// A `set_perf` write to `vcpu`'s window: the request is for that vCPU,
    /// whichever vCPU executed the write. Table mode resolves to the lowest
    /// entry >= the value, as the guest's cpufreq core would have; max-only
    /// mode takes 1...max as is. 0 is ignored; above max is clamped.
    mutating func setPerf(vcpu: Int, kHz: UInt32) -> AccessResult {
        guard kHz != 0 else { return .refused(.performanceZero) }
        let max = vcpus[vcpu].maxPerformanceKHz
        var invalid: InvalidAccess? = nil
        let resolved: UInt32
        switch tableMode {
        case .table:
            if let entry = tableEntryAtOrAbove(vcpu: vcpu, kHz: kHz) {
                resolved = entry
            } else {
                resolved = max
                invalid = .performanceAboveMax
            }
        case .maxOnly:
            if kHz > max {
                resolved = max
                invalid = .performanceAboveMax
            } else {
                resolved = kHz
            }
        }
        let request = GuestRequest(vcpu: vcpu, performanceKHz: resolved, source: .upstreamRegister)
        return AccessResult(request: request, invalid: invalid)
    }
}
