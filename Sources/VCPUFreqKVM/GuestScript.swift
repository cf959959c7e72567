import VCPUFreqCore

/// Width of one guest access, in bytes.
public enum AccessWidth: Int, Sendable, CaseIterable {
    case byte = 1
    case word16 = 2
    case word32 = 4
    case word64 = 8
}

/// One instruction of the guest script interpreter (Sources/CVCPUFreqKVM/
/// guest_interpreter.S documents the machine-level behaviour of each).
public enum GuestOp: Sendable, Equatable {
    /// `count` loads of `width` bytes at `address`. Result: the last value
    /// read and a 64-bit wrapping sum of all values (`GuestOpResult.lastValue`,
    /// `.checksum`).
    case read(address: UInt64, width: AccessWidth, count: UInt32)
    /// `count` stores of the low `width` bytes of `value` at `address`: an MMIO
    /// exit, a RAM store, or an ioeventfd signal, depending on what lies there.
    case write(address: UInt64, width: AccessWidth, value: UInt64, count: UInt32)
    /// A busy loop of `iterations` (no memory access, no exits): "work".
    /// `VCPU.calibrateSpin` measures what one iteration costs.
    case spin(iterations: UInt64)
    /// `ticks` times: a 32-bit load at `address` (cur_perf), then `spinIterations`
    /// of spin: the guest's frequency-invariance read on every scheduler tick.
    case tick(address: UInt64, ticks: UInt32, spinIterations: UInt64)
    /// `count` requests published in the shared-page slot at `slot`
    /// (SharedPageABI v1 guest protocol, see `GuestScriptABI`): odd iterations
    /// publish `utilization - 1` and `performanceKHz - 1` (1 for 0) so that
    /// every publish is a change. The doorbell at `doorbell` is written (with
    /// the vCPU index) only when the slot's host flags ask for a kick.
    case publish(
        slot: UInt64, utilization: UInt32, performanceKHz: UInt32, flags: SharedPageABI.GuestFlags,
        doorbell: UInt64, count: UInt32)
    /// Spins until the 32-bit word at `address` equals `value`, giving up
    /// after `maxSpins` failed checks (`GuestOpResult.spins`, `.timedOut`).
    case wait32(address: UInt64, value: UInt32, maxSpins: UInt64)
    /// `count` port reads (`in`) of `width` bytes (1, 2 or 4) from `port`.
    case portRead(port: UInt16, width: AccessWidth, count: UInt32)
    /// `count` port writes (`out`) of `width` bytes (1, 2 or 4) to `port`.
    case portWrite(port: UInt16, width: AccessWidth, value: UInt64, count: UInt32)
    /// The upstream driver building one CPU's frequency table: reads
    /// `perftbl_len` of the register window at `window`, and unless it is 0
    /// or above `maximumEntries` (the driver's PERFTBL_MAX_ENTRIES, 64),
    /// writes `perftbl_sel = i` and reads `perftbl_rd` for each entry, storing
    /// entry i as a 32-bit word at `buffer + 4 * i` (guest RAM). The length
    /// comes from the device at run time, as in the driver. Result: the
    /// length read (`GuestOpResult.tableLength`) and the wrapping sum of the
    /// entries (0 when refused).
    case perfTable(window: UInt64, buffer: UInt64, maximumEntries: UInt32)
    /// Reads the time stamp counter (`rdtsc`): `GuestOpResult.timestamp`.
    /// Differences of one vCPU's readings are durations in TSC ticks.
    case timestamp
    /// `count` requests, each timed and, when asked, awaited: the loop and
    /// its knobs live in a parameter block in guest RAM at `parameters`
    /// (`RequestLoopParameters`, written there with `write(to:at:)`).
    /// Result: doorbell writes made (`doorbellWrites`) and waits that gave up
    /// (`abandonedWaits`); the per-request time stamps go to the block's
    /// sample array (`RequestLoopParameters.samples(in:count:)`).
    case requests(parameters: UInt64, count: UInt32)
    /// `count` jobs of a guest workload run the way a Linux guest with a
    /// DVFS driver runs them: compute and memory-bound work, idle until each
    /// job's release (stores to the idle page), a scheduler tick that reads
    /// cur_perf, a PELT-like utilization estimate and schedutil's requests,
    /// sent through the block's path. The block (`WorkloadParameters`, at
    /// `parameters` in guest RAM) holds the jobs, the knobs and the state;
    /// per-job time stamps go to its record array. Result: requests sent
    /// (`GuestOpResult.value`) and kicks (`aux`).
    case workload(parameters: UInt64, count: UInt32)
    /// Ends the run. Appended by the encoder when a script lacks it.
    case end

    /// `count` 32-bit loads at `address` (a register read such as cur_perf).
    public static func read32(_ address: UInt64, count: UInt32 = 1) -> GuestOp {
        .read(address: address, width: .word32, count: count)
    }

    /// `count` 32-bit stores of `value` at `address` (a register write such as set_perf).
    public static func write32(_ address: UInt64, value: UInt32, count: UInt32 = 1) -> GuestOp {
        .write(address: address, width: .word32, value: UInt64(value), count: count)
    }
}

/// A program for the guest interpreter: ops run in order on one vCPU.
public struct GuestScript: Sendable, Equatable, ExpressibleByArrayLiteral {
    public var ops: [GuestOp]

    public init(_ ops: [GuestOp] = []) { self.ops = ops }
    public init(arrayLiteral ops: GuestOp...) { self.ops = ops }

    public mutating func append(_ op: GuestOp) { ops.append(op) }

    /// Ops that produce a result record: those before the first `end`.
    public var resultCount: Int { ops.firstIndex(of: .end) ?? ops.count }
}
