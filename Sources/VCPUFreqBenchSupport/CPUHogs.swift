import Atomics
import Foundation
import VCPUFreqCore
import VCPUFreqLinux

/// Threads that only burn CPU, pinned, at the default priority (SCHED_NORMAL,
/// nice 0): the busy vCPUs of other VMs on a loaded host. Whatever shares
/// their CPUs has to preempt one to run, and waits its turn otherwise.
public final class CPUHogs: @unchecked Sendable {
    private let stopFlag = ManagedAtomic(false)
    private let finished = DispatchGroup()
    private let lock = NSLock()
    private var tids: [Int32] = []
    /// The CPU of each hog, in start order.
    public let cpus: [Int]

    /// Starts `perCPU` spinners on each CPU of `cpus`; returns once all run.
    /// - Throws: `CPUHogsError` when a hog cannot be pinned (they are stopped again).
    public init(cpus: [Int], perCPU: Int = 1, name: String = "bench-busy") throws {
        let placed = cpus.flatMap { Array(repeating: $0, count: max(perCPU, 0)) }
        self.cpus = placed
        let started = DispatchGroup()
        let failures = ManagedAtomic(0)
        for (index, cpu) in placed.enumerated() {
            started.enter()
            finished.enter()
            let thread = Thread { [stopFlag, finished, lock] in
                let tid = ThreadScheduling.currentThreadID()
                if (try? ThreadScheduling.setAffinity(CPUList([cpu]), of: tid)) == nil {
                    failures.wrappingIncrement(ordering: .relaxed)
                }
                lock.lock()
                self.tids.append(Int32(tid))
                lock.unlock()
                started.leave()
                var spins: UInt64 = 0
                while !stopFlag.load(ordering: .relaxed) { spins &+= 1 }
                finished.leave()
            }
            thread.name = perCPU > 1 ? "\(name)-\(cpu).\(index)" : "\(name)-\(cpu)"
            thread.start()
        }
        started.wait()
        if failures.load(ordering: .relaxed) > 0 {
            stop()
            throw CPUHogsError(description: "cannot pin the busy threads to CPUs \(cpus)")
        }
    }

    /// The hogs' thread IDs.
    public var threadIDs: [Int32] {
        lock.lock()
        defer { lock.unlock() }
        return tids.sorted()
    }

    /// Stops every hog and waits until they have ended. Idempotent.
    public func stop() {
        guard !stopFlag.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
    }

    deinit { stop() }
}

/// Why the hogs could not start: the message.
public struct CPUHogsError: Error, CustomStringConvertible {
    public let description: String
}
