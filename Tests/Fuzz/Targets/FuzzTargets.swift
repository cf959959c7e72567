/// One fuzz target: a name (the executable is fuzz-NAME, its committed
/// inputs are under Tests/Fuzz/corpus/NAME and Tests/Fuzz/regressions/NAME)
/// and a body that runs one input and checks the invariants.
public struct FuzzTarget: Sendable {
    public let name: String
    public let run: @Sendable (UnsafeRawBufferPointer) -> Void
    /// The seed corpus, built from real sessions (the driver probe, the
    /// demo's trace, valid messages, the topology fixtures): what
    /// `VCPUFREQ_FUZZ_WRITE_SEEDS=1` writes to Tests/Fuzz/corpus/NAME.
    public let seeds: @Sendable () -> [FuzzSeed]
}

/// One input of a seed corpus; `name` becomes its file name.
public struct FuzzSeed: Sendable {
    public var name: String
    public var bytes: [UInt8]
    public init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = bytes
    }
}

public enum FuzzTargets {
    /// Every target, in the order scripts/fuzz runs them.
    public static let all: [FuzzTarget] = [
        FuzzTarget(name: "device", run: DeviceTarget.run, seeds: DeviceTarget.seeds),
        FuzzTarget(name: "shared-page", run: SharedPageTarget.run, seeds: SharedPageTarget.seeds),
        FuzzTarget(name: "protocol", run: ProtocolTarget.run, seeds: ProtocolTarget.seeds),
        FuzzTarget(name: "daemon", run: DaemonTarget.run, seeds: DaemonTarget.seeds),
        FuzzTarget(name: "topology", run: TopologyTarget.run, seeds: TopologyTarget.seeds),
        FuzzTarget(name: "trace", run: TraceTarget.run, seeds: TraceTarget.seeds),
        FuzzTarget(name: "status", run: StatusTarget.run, seeds: StatusTarget.seeds),
        FuzzTarget(name: "vhost-user", run: VhostUserTarget.run, seeds: VhostUserTarget.seeds),
        FuzzTarget(name: "virtqueue", run: VirtqueueTarget.run, seeds: VirtqueueTarget.seeds),
        FuzzTarget(name: "scmi", run: SCMITarget.run, seeds: SCMITarget.seeds),
    ]
}
