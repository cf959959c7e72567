extension StatusDocument {
    /// The daemon's sched_ext scheduler (`serve --scheduler sched-ext`,
    /// docs/scheduler.md): `daemon.scheduler`, absent when none was asked for.
    public struct Scheduler: Codable, Equatable, Sendable {
        /// "loaded: …", "not loaded: <why>", "ejected by the kernel: <why>; …".
        public var state: String
        /// Registered and enabled now.
        public var loaded: Bool
        /// Times the kernel ejected it since the daemon started.
        public var ejections: Int
        /// Per CPU, what the scheduler keeps (empty unless loaded).
        public var cpus: [CPU]
        /// Its event counters by name (docs/scheduler.md), summed over CPUs.
        public var counters: [String: UInt64]

        public init(state: String, loaded: Bool, ejections: Int, cpus: [CPU], counters: [String: UInt64]) {
            self.state = state
            self.loaded = loaded
            self.ejections = ejections
            self.cpus = cpus
            self.counters = counters
        }

        public struct CPU: Codable, Equatable, Sendable {
            public var cpu: Int
            /// The host cluster it belongs to; nil when none does.
            public var cluster: String?
            /// Sum of util_min of the hinted vCPU threads runnable on it now
            /// (additive demand, 0...n × 1024).
            public var utilSum: Int64
            /// Hinted vCPU threads runnable on it now.
            public var hintedRunnable: UInt32
            /// Time hinted vCPU threads ran on it, and of that boosted, ns (cumulative).
            public var hintedRuntimeNanoseconds: UInt64
            public var boostedRuntimeNanoseconds: UInt64
            /// Its virtual clock (vtime_now, ns of weighted time since the load).
            public var virtualTimeNanoseconds: UInt64?

            public init(
                cpu: Int, cluster: String?, utilSum: Int64, hintedRunnable: UInt32, hintedRuntimeNanoseconds: UInt64,
                boostedRuntimeNanoseconds: UInt64, virtualTimeNanoseconds: UInt64? = nil
            ) {
                self.cpu = cpu
                self.cluster = cluster
                self.utilSum = utilSum
                self.hintedRunnable = hintedRunnable
                self.hintedRuntimeNanoseconds = hintedRuntimeNanoseconds
                self.boostedRuntimeNanoseconds = boostedRuntimeNanoseconds
                self.virtualTimeNanoseconds = virtualTimeNanoseconds
            }
        }
    }
}
