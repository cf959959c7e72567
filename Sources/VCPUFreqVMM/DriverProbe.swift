import VCPUFreqCore
import VCPUFreqKVM

/// Linux's `virtual-cpufreq` driver (drivers/cpufreq/virtual-cpufreq.c)
/// probing the device, performed by a real guest: every register access is
/// a guest load or store; only the driver's C control flow (which CPUs form
/// a policy) runs on the host, from the values the guest read.
///
/// 1. probe: `perftbl_len` of every possible CPU; 0 or more than 64 and the
///    driver refuses (`VMMError.guestFailed`).
/// 2. per policy, in CPU order (cpufreq onlines CPUs one by one; a CPU already
///    in a policy gets none): the table build (`perftbl_sel = i`, `perftbl_rd`
///    for each entry — the `perfTable` op, length read from the device), then
///    `perf_domain` of the policy's CPU and of every CPU: equal ones join the
///    policy (virt_cpufreq_get_sharing_cpus).
///
/// With the mirror mapped, the `perftbl_rd`, `perftbl_len` and `perf_domain`
/// loads never exit; each `perftbl_sel` store exits and is forwarded SYNC.
public struct DriverProbe: Sendable, Equatable {
    /// One cpufreq policy the driver built.
    public struct Policy: Sendable, Equatable {
        /// `policy->cpu`: the CPU whose window the table came from.
        public var cpu: Int
        /// `policy->cpus`: every CPU whose `perf_domain` equals `domain`.
        public var cpus: [Int]
        /// The `perf_domain` value of `cpu`.
        public var domain: UInt32
        /// Entries 0..<perftbl_len as the guest read them (max-only mode: one).
        public var tableKHz: [UInt32]

        public init(cpu: Int, cpus: [Int], domain: UInt32, tableKHz: [UInt32]) {
            self.cpu = cpu
            self.cpus = cpus
            self.domain = domain
            self.tableKHz = tableKHz
        }
    }

    /// `perftbl_len` per CPU, as read at probe.
    public var tableLengths: [UInt32]
    /// `perf_domain` per CPU, as read by the first policy's init.
    public var domains: [UInt32]
    public var policies: [Policy]
    /// Exits of the probing vCPU over the whole probe.
    public var exits: ExitCounts
    /// What forwarding those exits cost.
    public var forwarding: ForwardingCounts
    /// Guest time of the probe runs (host-side timing).
    public var duration: Duration

    /// Ops per script chunk: a script holds `GuestLayout.maximumScriptOps`
    /// ops with its END; 1024-vCPU VMs need several chunks per phase.
    static let chunk = GuestLayout.maximumScriptOps - 1

    /// Runs the probe on vCPU `vcpu` of `vm`.
    public static func run(on vm: ConnectedVM, vcpu: Int = 0, timeout: Duration = .seconds(30)) throws(VMMError) -> DriverProbe {
        let programs = GuestPrograms(addresses: vm.addresses)
        let cpus = vm.vcpuCount
        let exitsBefore = vm.exitCounts(vcpu: vcpu)
        let forwardingBefore = vm.forwarding(vcpu: vcpu)
        var duration = Duration.zero
        func run(_ ops: [GuestOp]) throws(VMMError) -> [GuestOpResult] {
            var results: [GuestOpResult] = []
            var start = 0
            while start < ops.count {
                let end = min(ops.count, start + chunk)
                do {
                    let result = try vm.run(vcpu: vcpu, GuestScript(Array(ops[start..<end])), timeout: timeout)
                    results += result.results
                    duration += result.duration
                } catch {
                    throw .kvm(error)
                }
                start = end
            }
            return results
        }

        let lengths = try run((0..<cpus).map { programs.read(.perftblLen, vcpu: $0) }).map {
            UInt32(truncatingIfNeeded: $0.lastValue)
        }
        for (cpu, length) in lengths.enumerated() where length == 0 || length > UInt32(UpstreamABI.maximumTableEntries) {
            throw .guestFailed("the driver refuses to probe: CPU \(cpu) reports perftbl_len \(length)")
        }

        guard let buffer = vm.scratch.first, vm.scratch.count >= 4 * UpstreamABI.maximumTableEntries else {
            throw .guestFailed("no guest RAM left for the table buffer")
        }
        var policies: [Policy] = []
        var covered = Array(repeating: false, count: cpus)
        var firstDomains: [UInt32]?
        for cpu in 0..<cpus where !covered[cpu] {
            var ops = [programs.perfTable(cpu: cpu, buffer: buffer), programs.read(.perfDomain, vcpu: cpu)]
            ops += (0..<cpus).map { programs.read(.perfDomain, vcpu: $0) }
            let results = try run(ops)
            guard results.count == ops.count else { throw .guestFailed("the policy init of CPU \(cpu) stopped early") }
            let length = results[0].tableLength
            guard length == lengths[cpu] else {
                throw .guestFailed("CPU \(cpu): perftbl_len \(lengths[cpu]) at probe, \(length) at policy init")
            }
            guard let offset = vm.vm.ram.offset(of: buffer) else { throw .guestFailed("the table buffer is not in RAM") }
            let table = (0..<Int(length)).map { vm.vm.ram.load32(at: offset + 4 * $0) }
            let domain = UInt32(truncatingIfNeeded: results[1].lastValue)
            let domains = results[2...].map { UInt32(truncatingIfNeeded: $0.lastValue) }
            if firstDomains == nil { firstDomains = domains }
            let members = domains.indices.filter { domains[$0] == domain && !covered[$0] }
            for member in members { covered[member] = true }
            covered[cpu] = true
            policies.append(Policy(cpu: cpu, cpus: members.isEmpty ? [cpu] : members, domain: domain, tableKHz: table))
        }
        return DriverProbe(
            tableLengths: lengths, domains: firstDomains ?? [], policies: policies,
            exits: vm.exitCounts(vcpu: vcpu) - exitsBefore, forwarding: vm.forwarding(vcpu: vcpu) - forwardingBefore,
            duration: duration)
    }

    /// The table of the policy holding `cpu` (what the guest's cpufreq uses for it).
    public func table(ofCPU cpu: Int) -> [UInt32] {
        policies.first { $0.cpus.contains(cpu) }?.tableKHz ?? []
    }
}
