import VCPUFreqCore

/// The live, per-vCPU exit counters: plain 64-bit words updated with relaxed
/// atomics by the vCPU thread (one increment per exit, no allocation) and read
/// by any thread while the guest runs.
final class ExitCounters: @unchecked Sendable {
    private enum Slot {
        static let mmioReads = ExitCounts.reasonSlots
        static let mmioWrites = ExitCounts.reasonSlots + 1
        static let io = ExitCounts.reasonSlots + 2
        static let other = ExitCounts.reasonSlots + 3
        static let idle = ExitCounts.reasonSlots + 4
        static let idleNanoseconds = ExitCounts.reasonSlots + 5
        static let count = ExitCounts.reasonSlots + 6
    }

    private let words: UnsafeMutablePointer<UInt64>

    init() {
        words = .allocate(capacity: Slot.count)
        words.initialize(repeating: 0, count: Slot.count)
    }

    deinit { words.deallocate() }

    @inline(__always)
    private func countReason(_ reason: UInt32) {
        KVMCall.counterAdd(words + Int(min(reason, UInt32(ExitCounts.reasonSlots - 1))), 1)
    }

    @inline(__always)
    func countMMIO(write: Bool) {
        countReason(KVMExitReason.mmio.rawValue)
        KVMCall.counterAdd(words + (write ? Slot.mmioWrites : Slot.mmioReads), 1)
    }

    @inline(__always)
    func countIO() {
        countReason(KVMExitReason.io.rawValue)
        KVMCall.counterAdd(words + Slot.io, 1)
    }

    @inline(__always)
    func countOther(_ reason: UInt32) {
        countReason(reason)
        KVMCall.counterAdd(words + Slot.other, 1)
    }

    @inline(__always)
    func countIdle(nanoseconds: UInt64) {
        KVMCall.counterAdd(words + Slot.idle, 1)
        KVMCall.counterAdd(words + Slot.idleNanoseconds, nanoseconds)
    }

    func snapshot() -> ExitCounts {
        var counts = ExitCounts()
        for index in 0..<ExitCounts.reasonSlots { counts.byReason[index] = KVMCall.counterLoad(words + index) }
        counts.mmioReads = KVMCall.counterLoad(words + Slot.mmioReads)
        counts.mmioWrites = KVMCall.counterLoad(words + Slot.mmioWrites)
        counts.io = KVMCall.counterLoad(words + Slot.io)
        counts.other = KVMCall.counterLoad(words + Slot.other)
        counts.idle = KVMCall.counterLoad(words + Slot.idle)
        counts.idleNanoseconds = KVMCall.counterLoad(words + Slot.idleNanoseconds)
        return counts
    }
}
