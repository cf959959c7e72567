import SystemPackage

/// Why an operation on a vCPU thread failed, facet by facet (the other
/// facets were still tried). The description is the log message.
public struct ThreadControlError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Operation: String, Sendable {
        case attach, apply, restore
    }

    /// One facet's failure.
    public struct Failure: Equatable, Sendable {
        public var facet: ActuatorFacet
        /// The actuator's name (`uclamp`, `latency`, ...), or `procfs`/`journal`.
        public var actuator: String
        public var errno: Errno
    }

    public var operation: Operation
    public var tid: Int32
    public var failures: [Failure]

    /// The thread has exited (ESRCH everywhere): expected when a VMM stops,
    /// so callers count it instead of logging it.
    public var threadGone: Bool { !failures.isEmpty && failures.allSatisfy { $0.errno == .noSuchProcess } }

    public var description: String {
        let parts = failures.map { "\($0.facet.rawValue)/\($0.actuator): \($0.errno)" }
        return "\(operation.rawValue) of thread \(tid) failed: \(parts.joined(separator: "; "))"
    }
}

/// What happened per facet since the controller started.
public struct FacetCounters: Equatable, Sendable {
    /// Successful applies (each is one or a few syscalls).
    public var applied = 0
    /// Applies skipped because the facet's part of the hint did not change.
    public var unchanged = 0
    /// Failures other than a vanished thread.
    public var failed = 0
    /// ESRCH: the thread was gone (counted, not logged).
    public var threadGone = 0
    public var restored = 0

    public init() {}
}
