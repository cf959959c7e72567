import Glibc
import Synchronization
import VCPUFreqLinux
@testable import VCPUFreqCore

/// A shared page that is really safe across threads: 32-bit atomics over one
/// raw allocation (which the C helpers can use too), with real fences.
final class AtomicSharedPageMemory: SharedPageMemory, @unchecked Sendable {
    let words: UnsafeMutablePointer<Atomic<UInt32>>
    let wordCount: Int

    init(vcpuCount: Int) {
        wordCount = SharedPageABI.regionSize(vcpuCount: vcpuCount) / 4
        words = .allocate(capacity: wordCount)
        for index in 0..<wordCount { (words + index).initialize(to: Atomic(0)) }
    }

    deinit {
        words.deinitialize(count: wordCount)
        words.deallocate()
    }

    /// The region's first byte, for the C header's helpers.
    var rawPointer: UnsafeMutableRawPointer { UnsafeMutableRawPointer(words) }

    private func index(_ offset: Int) -> Int? {
        guard offset >= 0, offset & 3 == 0, offset / 4 < wordCount else { return nil }
        return offset / 4
    }

    func load(_ offset: Int) -> UInt32 {
        guard let index = index(offset) else { return 0 }
        return words[index].load(ordering: .relaxed)
    }

    func loadAcquire(_ offset: Int) -> UInt32 {
        guard let index = index(offset) else { return 0 }
        return words[index].load(ordering: .acquiring)
    }

    func store(_ offset: Int, _ value: UInt32) {
        guard let index = index(offset) else { return }
        words[index].store(value, ordering: .relaxed)
    }

    func storeRelease(_ offset: Int, _ value: UInt32) {
        guard let index = index(offset) else { return }
        words[index].store(value, ordering: .releasing)
    }

    func fullFence() { atomicMemoryFence(ordering: .sequentiallyConsistent) }
}

/// Who performs a memory operation in a scheduled interleaving.
enum Party: Sendable { case guest, host }

/// Forces a given interleaving of two threads' memory operations: the k-th
/// operation overall is performed by `order[k]`. When a party has finished,
/// its remaining turns are skipped; after `order` runs out the guest goes
/// first, then the host. Each operation is atomic, so the executions are
/// sequentially consistent: this checks the protocols' logic, step by step.
final class Schedule: @unchecked Sendable {
    let order: [Party]
    private let position = Atomic<Int>(0)
    private let guestDone = Atomic<Bool>(false)
    private let hostDone = Atomic<Bool>(false)

    init(_ order: [Party]) { self.order = order }

    func isDone(_ party: Party) -> Bool {
        party == .guest ? guestDone.load(ordering: .acquiring) : hostDone.load(ordering: .acquiring)
    }

    func finish(_ party: Party) {
        if party == .guest { guestDone.store(true, ordering: .releasing) } else { hostDone.store(true, ordering: .releasing) }
    }

    func waitTurn(_ me: Party) {
        while true {
            let turn = position.load(ordering: .acquiring)
            let owner = turn < order.count ? order[turn] : (isDone(.guest) ? .host : .guest)
            if owner == me { return }
            if isDone(owner) {
                _ = position.compareExchange(expected: turn, desired: turn + 1, ordering: .acquiringAndReleasing)
                continue
            }
            sched_yield()
        }
    }

    func operationDone() { position.add(1, ordering: .acquiringAndReleasing) }
}

/// The schedule the scheduled memories obey; nil = run freely (setup and
/// checks between runs). Only changed while no worker thread runs.
final class ScheduleControl: @unchecked Sendable {
    var schedule: Schedule?
}

/// One party's view of a shared `AtomicSharedPageMemory` under a `Schedule`.
struct ScheduledMemory: SharedPageMemory, @unchecked Sendable {
    let memory: AtomicSharedPageMemory
    let control: ScheduleControl
    let party: Party

    private func step<T>(_ body: () -> T) -> T {
        guard let schedule = control.schedule else { return body() }
        schedule.waitTurn(party)
        defer { schedule.operationDone() }
        return body()
    }

    func load(_ offset: Int) -> UInt32 { step { memory.load(offset) } }
    func loadAcquire(_ offset: Int) -> UInt32 { step { memory.loadAcquire(offset) } }
    func store(_ offset: Int, _ value: UInt32) { step { memory.store(offset, value) } }
    func storeRelease(_ offset: Int, _ value: UInt32) { step { memory.storeRelease(offset, value) } }
    func fullFence() { step { memory.fullFence() } }
}

/// A POSIX thread running `body`; `join()` waits for it.
final class TestThread: @unchecked Sendable {
    private final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }
    private var thread = pthread_t()

    init(_ body: @escaping @Sendable () -> Void) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let created = pthread_create(&thread, nil, { raw in
            guard let raw else { return nil }
            Unmanaged<Box>.fromOpaque(raw).takeRetainedValue().body()
            return nil
        }, box)
        precondition(created == 0, "pthread_create failed: \(created)")
    }

    func join() { pthread_join(thread, nil) }
}

/// Every way to place `hostOperations` host turns among `guestOperations`
/// guest turns.
func allInterleavings(guestOperations: Int, hostOperations: Int) -> [[Party]] {
    var result: [[Party]] = []
    func extend(_ prefix: [Party], guests: Int, hosts: Int) {
        if guests == 0 && hosts == 0 { result.append(prefix); return }
        if guests > 0 { extend(prefix + [.guest], guests: guests - 1, hosts: hosts) }
        if hosts > 0 { extend(prefix + [.host], guests: guests, hosts: hosts - 1) }
    }
    extend([], guests: guestOperations, hosts: hostOperations)
    return result
}

/// Runs `guest` and `host` on two threads under `order`, then returns to free running.
func runInterleaved(
    _ control: ScheduleControl, order: [Party], guest: @escaping @Sendable () -> Void, host: @escaping @Sendable () -> Void
) {
    let schedule = Schedule(order)
    control.schedule = schedule
    let guestThread = TestThread {
        guest()
        schedule.finish(.guest)
    }
    let hostThread = TestThread {
        host()
        schedule.finish(.host)
    }
    guestThread.join()
    hostThread.join()
    control.schedule = nil
}

/// A value shared with one worker thread at a time (handed over by
/// pthread_create/pthread_join, which order memory).
final class Shared<Value>: @unchecked Sendable {
    var value: Value
    init(_ value: Value) { self.value = value }
}

/// Synchronises a result written on a worker thread with the test thread.
final class ResultBox<Value: Sendable>: @unchecked Sendable {
    private let lock = AnnotatedMutex<Value?>(nil)
    func set(_ value: Value) { lock.withLock { $0 = value } }
    var value: Value? { lock.withLock { $0 } }
}
