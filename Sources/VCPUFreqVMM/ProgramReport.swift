import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux
import VCPUFreqProtocol

/// What a guest program did and what it cost, per phase and per vCPU, and
/// what the daemon applied at the end: the data `vcpufreq vmm` prints.
public struct ProgramReport: Sendable {
    /// One phase on one vCPU.
    public struct VCPUPhase: Sendable {
        public var vcpu: Int
        /// What the guest asked, in the device's words ("set_perf 1000000 kHz").
        public var asked: String
        /// Guest operations timed in the phase (requests, loads, kicks).
        public var operations: UInt64
        /// KVM exits of the phase.
        public var exits: ExitCounts
        /// What forwarding those exits cost.
        public var forwarding: ForwardingCounts
        /// The runs' host-side duration (first KVM_RUN to the DONE exit), summed.
        public var duration: Duration
        /// Subtracted before dividing by `operations`: an empty run's time
        /// (entering the guest and the final exit) per run.
        public var overhead: Duration
        /// Doorbell writes the guest made (publish phases).
        public var doorbellWrites: UInt64?
        /// Why the run failed, if it did.
        public var failure: String?

        /// Host-side time per operation, ns; nil without operations or after a failure.
        public var nanosecondsPerOperation: Double? {
            guard failure == nil, operations > 0 else { return nil }
            return max(0, Self.nanoseconds(duration) - Self.nanoseconds(overhead)) / Double(operations)
        }

        static func nanoseconds(_ duration: Duration) -> Double {
            Double(duration.components.seconds) * 1e9 + Double(duration.components.attoseconds) / 1e9
        }
    }

    public struct Phase: Sendable {
        /// A few words ("set_perf", "publish, burst").
        public var name: String
        /// What the phase does and how it reaches the daemon.
        public var title: String
        public var vcpus: [VCPUPhase]
    }

    /// Each vCPU at the end: its thread, everything it cost, and what the
    /// daemon applied (the shared page host area and STATUS).
    public struct Outcome: Sendable {
        public var vcpu: Int
        public var threadID: Int32
        public var exits: ExitCounts
        public var forwarding: ForwardingCounts
        public var hostArea: SharedPageGuest<AtomicSharedPageMemory>.HostArea?
        public var status: StatusDocument.VCPU?
    }

    public var program: GuestProgram
    public var attachment: DaemonMessage.AttachOK
    public var vmName: String
    public var vcpuCount: Int
    public var sharedPage: Bool
    public var mirror: Bool
    public var doorbells: Bool
    public var probe: DriverProbe?
    public var phases: [Phase]
    public var outcomes: [Outcome]
    /// STATUS of the VM after the program (counters, kick mode, invalid accesses).
    public var status: StatusDocument.VM?
    /// The first error forwarding an access, if any (the guest then read 0).
    public var forwardingFailure: String?
}
