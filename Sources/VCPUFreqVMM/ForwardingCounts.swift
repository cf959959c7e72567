import Atomics

/// What one vCPU's MMIO exits in the device space cost the VMM: how many
/// were forwarded to the daemon, how, and the host time spent waiting for it.
/// Together with the vCPU's `ExitCounts` this is the exit side of the story.
public struct ForwardingCounts: Sendable, Equatable, CustomStringConvertible {
    /// Guest loads forwarded as READ (each waits for READ_OK).
    public var reads: UInt64 = 0
    /// Guest stores forwarded as posted WRITE (no reply).
    public var postedWrites: UInt64 = 0
    /// Guest stores forwarded as SYNC WRITE (`perftbl_sel` with the mirror mapped).
    public var syncWrites: UInt64 = 0
    /// READ_OK replies that flagged the access invalid (the client does not
    /// return WRITE_OK's code; the daemon's status counts every kind).
    public var invalidReplies: UInt64 = 0
    /// Exits outside the device space, answered by the VMM itself (read 0, store dropped).
    public var outside: UInt64 = 0
    /// Forwards that failed (the daemon closed the connection, say); the guest read 0.
    public var failures: UInt64 = 0
    /// Host time spent in forwarding calls, from the handler's entry to the
    /// daemon's answer (posted writes: until the send returned), ns.
    public var nanoseconds: UInt64 = 0

    public init() {}

    /// Accesses that reached the daemon.
    public var forwarded: UInt64 { reads &+ postedWrites &+ syncWrites }

    /// Counts between two snapshots of the same vCPU.
    public static func - (later: ForwardingCounts, earlier: ForwardingCounts) -> ForwardingCounts {
        var delta = ForwardingCounts()
        delta.reads = later.reads &- earlier.reads
        delta.postedWrites = later.postedWrites &- earlier.postedWrites
        delta.syncWrites = later.syncWrites &- earlier.syncWrites
        delta.invalidReplies = later.invalidReplies &- earlier.invalidReplies
        delta.outside = later.outside &- earlier.outside
        delta.failures = later.failures &- earlier.failures
        delta.nanoseconds = later.nanoseconds &- earlier.nanoseconds
        return delta
    }

    public var description: String {
        "forwarded reads \(reads), posted writes \(postedWrites), sync writes \(syncWrites), "
            + "invalid \(invalidReplies), outside \(outside), failures \(failures), \(nanoseconds / 1000) µs"
    }
}

/// The live counters behind `ForwardingCounts`: a fixed block of words per
/// vCPU, allocated once, bumped with relaxed atomics by that vCPU's thread
/// and read by any thread. No allocation per access.
final class ForwardingCounters: @unchecked Sendable {
    enum Word: Int, CaseIterable {
        case reads, postedWrites, syncWrites, invalidReplies, outside, failures, nanoseconds
    }

    private let vcpuCount: Int
    private let words: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>

    init(vcpuCount: Int) {
        self.vcpuCount = max(vcpuCount, 1)
        let count = self.vcpuCount * Word.allCases.count
        words = .allocate(capacity: count)
        words.initialize(repeating: UnsafeAtomic<UInt64>.Storage(0), count: count)
    }

    deinit { words.deallocate() }

    @inline(__always)
    private func word(_ vcpu: Int, _ word: Word) -> UnsafeAtomic<UInt64>? {
        guard vcpu >= 0, vcpu < vcpuCount else { return nil }
        return UnsafeAtomic(at: words + vcpu * Word.allCases.count + word.rawValue)
    }

    @inline(__always)
    func add(_ vcpu: Int, _ which: Word, _ amount: UInt64 = 1) {
        word(vcpu, which)?.wrappingIncrement(by: amount, ordering: .relaxed)
    }

    func snapshot(vcpu: Int) -> ForwardingCounts {
        func load(_ which: Word) -> UInt64 { word(vcpu, which)?.load(ordering: .relaxed) ?? 0 }
        var counts = ForwardingCounts()
        counts.reads = load(.reads)
        counts.postedWrites = load(.postedWrites)
        counts.syncWrites = load(.syncWrites)
        counts.invalidReplies = load(.invalidReplies)
        counts.outside = load(.outside)
        counts.failures = load(.failures)
        counts.nanoseconds = load(.nanoseconds)
        return counts
    }
}
