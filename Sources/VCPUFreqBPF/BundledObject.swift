/// The BPF objects the build compiled from bpf/ and embedded (BPFObjectPlugin).
public enum BundledObject {
    /// bpf/vcpufreq.bpf.c compiled with `clang -target bpf -O2 -g`: the
    /// scheduler and KVM programs and the util-hint map.
    public static let vcpufreq: [UInt8] = Base64.decode(EmbeddedBPFObjects.vcpufreq) ?? []
    /// The object name the monitor gives it.
    public static let vcpufreqName = "vcpufreq"
    /// bpf/vcpufreq_sched.bpf.c: the sched_ext scheduler (struct_ops) and its maps.
    public static let scheduler: [UInt8] = Base64.decode(EmbeddedBPFObjects.vcpufreq_sched) ?? []
    /// The object name the scheduler's loader gives it.
    public static let schedulerName = "vcpufreq_sched"
}
