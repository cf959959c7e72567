/// Whether this kernel can run the scheduler, and why not: sched_ext
/// compiled in (/sys/kernel/sched_ext), the kfuncs and the struct_ops type
/// the scheduler uses present in the kernel's BTF, and no other sched_ext
/// scheduler loaded. `probe` reads the kernel; `problem` is the pure verdict.
public struct SchedExtSupport: Equatable, Sendable {
    /// /sys/kernel/sched_ext exists (CONFIG_SCHED_CLASS_EXT).
    public var hasSysfs: Bool
    /// /sys/kernel/sched_ext/state: enabling, enabled, disabling, disabled.
    public var state: String?
    /// /sys/kernel/sched_ext/root/ops: the loaded root scheduler's name, if any.
    public var loadedScheduler: String?
    /// Names of `requiredKernelFunctions` / `requiredKernelStructs` the BTF
    /// lacks; nil when the BTF could not be read (`btfProblem` says why).
    public var missingKernelTypes: [String]?
    public var btfProblem: String?

    /// The kfuncs bpf/vcpufreq_sched.bpf.c calls (vcpufreq_sched_kernel.h).
    public static let requiredKernelFunctions = [
        "scx_bpf_create_dsq", "scx_bpf_select_cpu_dfl", "__scx_bpf_select_cpu_and", "scx_bpf_dsq_insert",
        "__scx_bpf_dsq_insert_vtime", "scx_bpf_dsq_move_to_local", "scx_bpf_dsq_nr_queued", "scx_bpf_kick_cpu",
        "scx_bpf_task_cpu", "scx_bpf_task_set_slice", "scx_bpf_nr_cpu_ids", "scx_bpf_now", "bpf_cpumask_create",
        "bpf_cpumask_release", "bpf_cpumask_populate", "bpf_cpumask_test_cpu", "bpf_cpumask_intersects",
        "bpf_cpumask_any_and_distribute",
    ]
    public static let requiredKernelStructs = ["sched_ext_ops"]

    public static let defaultSysfsRoot = "/sys"
    public static let defaultBTFPath = "/sys/kernel/btf/vmlinux"

    public init(
        hasSysfs: Bool, state: String?, loadedScheduler: String?, missingKernelTypes: [String]?, btfProblem: String? = nil
    ) {
        self.hasSysfs = hasSysfs
        self.state = state
        self.loadedScheduler = loadedScheduler
        self.missingKernelTypes = missingKernelTypes
        self.btfProblem = btfProblem
    }

    /// sysfs only (no BTF: parsing the kernel's takes seconds under TCG):
    /// /sys/kernel/sched_ext/state and root/ops; nil when there is no sched_ext.
    public static func sysfsState(sysfsRoot: String = defaultSysfsRoot) -> (state: String?, loadedScheduler: String?)? {
        let directory = sysfsRoot + "/kernel/sched_ext"
        guard FileSystems.exists(directory) else { return nil }
        func line(_ path: String) -> String? {
            FileSystems.readSmallFile(path)?.split(separator: "\n").first.map(String.init)
        }
        return (line(directory + "/state"), line(directory + "/root/ops"))
    }

    /// Reads sysfs below `sysfsRoot` and the BTF at `btfPath`.
    public static func probe(sysfsRoot: String = defaultSysfsRoot, btfPath: String = defaultBTFPath) -> SchedExtSupport {
        guard let sysfs = sysfsState(sysfsRoot: sysfsRoot) else {
            return SchedExtSupport(hasSysfs: false, state: nil, loadedScheduler: nil, missingKernelTypes: nil)
        }
        var missing: [String]?
        var btfProblem: String?
        switch LibBPF.missingKernelTypes(btfPath: btfPath, functions: requiredKernelFunctions, structs: requiredKernelStructs) {
        case .success(let names): missing = names
        case .failure(let error): btfProblem = "cannot read the kernel's BTF: \(error)"
        }
        return SchedExtSupport(
            hasSysfs: true, state: sysfs.state, loadedScheduler: sysfs.loadedScheduler, missingKernelTypes: missing,
            btfProblem: btfProblem)
    }

    /// Why the scheduler cannot be loaded here; nil when it can.
    public var problem: String? {
        guard hasSysfs else {
            return "this kernel has no sched_ext (no /sys/kernel/sched_ext: built without CONFIG_SCHED_CLASS_EXT)"
        }
        guard let missing = missingKernelTypes else { return btfProblem ?? "cannot read the kernel's BTF" }
        if !missing.isEmpty {
            return "this kernel's sched_ext lacks what the scheduler uses: \(missing.joined(separator: ", "))"
                + " (it is written against the kfuncs of Linux 7.3; 6.12 calls them scx_bpf_dispatch*)"
        }
        if let other = loadedScheduler, !other.isEmpty {
            return "another sched_ext scheduler is loaded: '\(other)' (state \(state ?? "unknown"))"
        }
        if let state, state != "disabled" {
            return "sched_ext is \(state): another scheduler is being loaded or unloaded"
        }
        return nil
    }
}
