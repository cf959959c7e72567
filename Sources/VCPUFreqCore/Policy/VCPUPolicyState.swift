/// What the policy engine knows about one vCPU: its latest request, the
/// demand that request produces now, and its timers. Times are the daemon's
/// monotonic clock in nanoseconds, as passed to `PolicyEngine.submit` and
/// `PolicyEngine.advance(to:)`.
///
/// States of a vCPU (they combine):
/// - *never asked*: `lastRequest == nil`; demand 0.
/// - *requesting*: its demand is `requestedUtilization` (within the cap).
/// - *boosted*: `boostUntil != nil`; demand is at least the boost utilization
///   until that time (exclusive), then it falls back to the request.
/// - *idle*: `isIdle`; no request for `idleDecayMilliseconds`, demand 0 until
///   the next request. An idle vCPU is never boosted.
/// - *held*: `heldUntil != nil`; the domain's new hint for this vCPU differs
///   from the applied one but the vCPU's last change is younger than the
///   minimum interval. The latest target is applied at `heldUntil`.
public struct VCPUPolicyState: Equatable, Sendable {
    /// The latest request from this vCPU, nil before the first.
    public internal(set) var lastRequest: GuestRequest?
    /// When `lastRequest` arrived, ns.
    public internal(set) var lastRequestAt: UInt64?
    /// The utilization (0...1024) the latest request maps to, before the cap,
    /// boost and idle decay. A request that carries neither a performance
    /// level nor a utilization (flags only) keeps the previous value.
    public internal(set) var requestedUtilization: UInt16 = 0
    /// This vCPU's own demand now, 0...cap: the request, lifted by a boost,
    /// zeroed by idle decay, cut to the VM's cap. The domain's util_min is the
    /// maximum of its vCPUs' demands.
    public internal(set) var demand: UInt16 = 0
    /// The request (or boost) asked for more than the VM's cap and was cut.
    public internal(set) var isCapped = false
    /// No request for `idleDecayMilliseconds`: demand decayed to 0.
    public internal(set) var isIdle = false
    /// End (exclusive) of the current boost, ns; nil when not boosted.
    public internal(set) var boostUntil: UInt64?
    /// The latest latency flag the guest sent (registers cannot say, so they
    /// leave it as it was). Latency-sensitive vCPUs get the VM's latency hint.
    public internal(set) var latencySensitive = false
    /// When the applied hint of this vCPU last changed, ns; nil before the
    /// first change after attach.
    public internal(set) var lastAppliedAt: UInt64?
    /// A changed hint waits for the minimum interval until this time, ns.
    public internal(set) var heldUntil: UInt64?

    public init() {}

    /// A change is waiting for the minimum interval to pass.
    public var isHeld: Bool { heldUntil != nil }
    /// A boost is in force.
    public var isBoosted: Bool { boostUntil != nil }
}
