import VCPUFreqProtocol

/// What the host scheduler really did with one tracked thread since it was
/// tracked, as the BPF programs counted it.
public struct ThreadStats: Equatable, Sendable {
    /// Time on CPU, ns: switch-in to switch-out, plus the slice it is in
    /// when read (the programs only add a slice when it ends).
    public var runtimeNanoseconds: UInt64
    /// Whether it was on a CPU when read. A thread that has exited is on CPU
    /// until its last switch-out, a little after pthread_join returns.
    public var isOnCPU: Bool
    /// Wake-ups (sched_wakeup and sched_wakeup_new). On the development VMs
    /// those raised on a CPU while the sandbox's agent runs there are not
    /// seen (bpf/vcpufreq.bpf.c).
    public var wakeups: UInt64
    /// Switched out blocked: it went to sleep (the kernel's nvcsw).
    public var voluntarySwitches: UInt64
    /// Switched out still runnable: preempted (the kernel's nivcsw).
    public var involuntarySwitches: UInt64
    /// Moves to another CPU.
    public var migrations: UInt64
    /// Runnable → running delays.
    public var runDelay: RunDelayHistogram
    /// The CPU it last ran on (set at switch-in and switch-out); nil before
    /// it was seen running.
    public var lastCPU: Int?
    /// What its guest asked at its scheduling events (a vCPU thread with a
    /// BPF-map shared page; nil when the programs never read a slot for it).
    public var guest: StatusDocument.GuestSamples?

    public init(
        runtimeNanoseconds: UInt64 = 0, isOnCPU: Bool = false, wakeups: UInt64 = 0, voluntarySwitches: UInt64 = 0,
        involuntarySwitches: UInt64 = 0, migrations: UInt64 = 0, runDelay: RunDelayHistogram = .init(),
        lastCPU: Int? = nil, guest: StatusDocument.GuestSamples? = nil
    ) {
        self.runtimeNanoseconds = runtimeNanoseconds
        self.isOnCPU = isOnCPU
        self.wakeups = wakeups
        self.voluntarySwitches = voluntarySwitches
        self.involuntarySwitches = involuntarySwitches
        self.migrations = migrations
        self.runDelay = runDelay
        self.lastCPU = lastCPU
        self.guest = guest
    }
}
