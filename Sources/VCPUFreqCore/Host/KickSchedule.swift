/// When the host wants doorbells and when it polls instead (kick
/// suppression, docs/abi.md "Doorbell and kick suppression").
public enum KickMode: String, CaseIterable, Equatable, Sendable {
    /// Kicks while requests are rare; a burst switches to polling, and a run
    /// of idle polls switches back.
    case adaptive
    /// Always kicks, never polls (every request costs the guest an ioeventfd write).
    case always
    /// Never kicks: the host polls every interval (requests cost the guest a
    /// few stores; the host pays a timer).
    case never
    /// For VMs whose requests the host scheduler's BPF programs read in place
    /// (a BPF-map shared page): `never` — no kicks; the daemon polls every
    /// interval only for what needs a system call (uclamp, slice, affinity).
    /// On a memfd page, where nothing else reads the slots, `adaptive`.
    case scheduler

    /// The mode a VM runs with once its shared page exists.
    public func effective(bpfMapPage: Bool) -> KickMode {
        guard self == .scheduler else { return self }
        return bpfMapPage ? .never : .adaptive
    }
}

/// Per-VM state machine of kick suppression, on the caller's clock (ns).
/// Pure: the daemon performs the transitions it returns
/// (`SharedPageHost.suppressKicks` / `requestKicks`).
public struct KickSchedule: Equatable, Sendable {
    public enum Transition: Equatable, Sendable {
        /// Clear the kick flags and poll from now on.
        case startPolling
        /// Set the kick flags (then consume what the re-check returns) and stop polling.
        case stopPolling
    }

    public let mode: KickMode
    /// The documented bound: a request written while kicks are suppressed is
    /// read within this long.
    public let pollIntervalNanoseconds: UInt64
    /// Kicks within one poll interval that make the adaptive mode poll: at
    /// this rate one poll per interval costs less than the wake-ups.
    public let burstThreshold: Int
    /// Consecutive polls that found nothing before the adaptive mode asks for
    /// kicks again (so a quiet guest costs the host nothing).
    public let idlePollsBeforeKicks: Int

    public private(set) var isPolling: Bool
    /// When the next poll is due, while polling.
    public private(set) var nextPoll: UInt64?
    private var windowStart: UInt64 = 0
    private var kicksInWindow = 0
    private var idlePolls = 0

    public init(mode: KickMode, pollIntervalMicroseconds: UInt32, burstThreshold: Int = 4, idlePollsBeforeKicks: Int = 8) {
        self.mode = mode
        self.pollIntervalNanoseconds = UInt64(max(pollIntervalMicroseconds, 1)) * 1000
        self.burstThreshold = max(burstThreshold, 1)
        self.idlePollsBeforeKicks = max(idlePollsBeforeKicks, 1)
        self.isPolling = false
    }

    /// At attach: mode `never` polls from the start.
    public mutating func start(now: UInt64) -> Transition? {
        guard mode == .never, !isPolling else { return nil }
        isPolling = true
        nextPoll = now &+ pollIntervalNanoseconds
        return .startPolling
    }

    /// A doorbell rang.
    public mutating func kicked(now: UInt64) -> Transition? {
        guard mode == .adaptive, !isPolling else { return nil }
        if now &- windowStart >= pollIntervalNanoseconds || now < windowStart {
            windowStart = now
            kicksInWindow = 0
        }
        kicksInWindow += 1
        guard kicksInWindow >= burstThreshold else { return nil }
        isPolling = true
        idlePolls = 0
        nextPoll = now &+ pollIntervalNanoseconds
        return .startPolling
    }

    /// A poll ran at `now` and found `updatedSlots` slots with new requests.
    public mutating func polled(now: UInt64, updatedSlots: Int) -> Transition? {
        guard isPolling else { return nil }
        idlePolls = updatedSlots > 0 ? 0 : idlePolls + 1
        if mode == .adaptive && idlePolls >= idlePollsBeforeKicks {
            isPolling = false
            nextPoll = nil
            kicksInWindow = 0
            windowStart = now
            return .stopPolling
        }
        nextPoll = now &+ pollIntervalNanoseconds
        return nil
    }
}
