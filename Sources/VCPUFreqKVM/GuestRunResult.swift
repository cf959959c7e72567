/// Why the guest interpreter stopped (the results header's status word).
public enum GuestScriptStatus: Equatable, Sendable, CustomStringConvertible {
    /// An END op ran: the script completed.
    case ended
    /// The opcode of the op it stopped at is unknown.
    case badOpcode
    /// The script area held no END (the encoder always adds one).
    case noEnd
    /// An access width the op does not support.
    case badWidth
    /// Any other value: the interpreter or its memory was corrupted.
    case unknown(UInt32)

    init(rawValue: UInt32) {
        switch rawValue {
        case 1: self = .ended
        case 2: self = .badOpcode
        case 3: self = .noEnd
        case 4: self = .badWidth
        default: self = .unknown(rawValue)
        }
    }

    public var description: String {
        switch self {
        case .ended: return "ended"
        case .badOpcode: return "unknown opcode"
        case .noEnd: return "no END op"
        case .badWidth: return "unsupported access width"
        case .unknown(let raw): return "unknown status \(raw)"
        }
    }
}

/// What one op left in its result record; the meaning of the two words
/// depends on the op (see `GuestOp`), the named accessors spell it out.
public struct GuestOpResult: Sendable, Equatable {
    public var value: UInt64
    public var aux: UInt64

    public init(value: UInt64, aux: UInt64) {
        self.value = value
        self.aux = aux
    }

    /// read, tick, portRead: the last value read.
    public var lastValue: UInt64 { value }
    /// read, tick, portRead, perfTable: wrapping sum of every value read.
    public var checksum: UInt64 { aux }
    /// write, portWrite: stores made. spin: iterations.
    public var count: UInt64 { value }
    /// publish: doorbell writes made (kicks).
    public var doorbellWrites: UInt64 { value }
    /// publish: the sequence number stored last.
    public var sequence: UInt32 { UInt32(truncatingIfNeeded: aux) }
    /// wait32: failed checks before the word matched (or the limit).
    public var spins: UInt64 { value }
    /// wait32: the word never matched within the limit.
    public var timedOut: Bool { aux != 0 }
    /// perfTable: the `perftbl_len` the guest read (entries copied unless
    /// 0 or above the op's maximum).
    public var tableLength: UInt32 { UInt32(truncatingIfNeeded: value) }
}

/// The outcome of one script run on one vCPU.
public struct GuestRunResult: Sendable {
    public var vcpu: Int
    /// One record per op before the script's END.
    public var results: [GuestOpResult]
    /// Userspace exits during this run (the final DONE write excluded).
    public var exits: ExitCounts
    /// Wall time from the first KVM_RUN to the DONE exit.
    public var duration: Duration
}
