/// The names VMMs give their vCPU threads (/proc/<pid>/task/<tid>/comm),
/// for finding the vCPU threads of a VMM that does not name them itself
/// (an unmodified QEMU or crosvm behind a vhost-user device).
///
/// - QEMU with `-name ...,debug-threads=on`: `CPU <n>/KVM` (KVM, HVF and
///   other accelerators name theirs `CPU <n>/<accel>`), `CPU <n>/TCG` with
///   multi-threaded TCG.
/// - crosvm: `crosvm_vcpu<n>`.
///
/// comm is at most 15 bytes, so `CPU 1000/KVM` still fits.
public enum VCPUThreadName {
    /// The vCPU index a thread name stands for, or nil.
    public static func vcpuIndex(_ name: Substring) -> Int? {
        let name = name.hasSuffix("\n") ? name.dropLast() : name
        if name.hasPrefix("CPU ") {
            let rest = name.dropFirst(4)
            guard let slash = rest.firstIndex(of: "/") else { return nil }
            let accelerator = rest[rest.index(after: slash)...]
            guard !accelerator.isEmpty, accelerator.allSatisfy({ $0.isLetter }) else { return nil }
            return index(rest[..<slash])
        }
        if name.hasPrefix("crosvm_vcpu") { return index(name.dropFirst("crosvm_vcpu".count)) }
        return nil
    }

    /// Decimal digits only (no sign, no spaces), at most 5 of them.
    private static func index(_ digits: Substring) -> Int? {
        guard !digits.isEmpty, digits.count <= 5, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return Int(digits)
    }

    /// The vCPU threads among `threads` (tid, name): index → tid. A vCPU
    /// index named by two threads keeps the lower TID (the older thread, a
    /// replaced one is gone soon); indices at or above `vcpuCount` are left out.
    public static func vcpuThreads(_ threads: [(tid: Int32, name: String)], vcpuCount: Int) -> [Int: Int32] {
        var found: [Int: Int32] = [:]
        for thread in threads {
            guard let index = vcpuIndex(Substring(thread.name)), index < vcpuCount else { continue }
            if let existing = found[index], existing < thread.tid { continue }
            found[index] = thread.tid
        }
        return found
    }
}
