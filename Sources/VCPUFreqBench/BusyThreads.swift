import Atomics
import Foundation
import VCPUFreqCore
import VCPUFreqLinux

/// One thread per CPU that only burns CPU, pinned, at the default priority:
/// the busy vCPUs of other VMs on a loaded host. The daemon then has to
/// preempt someone to run when a kick wakes it.
final class BusyThreads: @unchecked Sendable {
    private let stopFlag = ManagedAtomic(false)
    private let finished = DispatchGroup()

    /// Starts a spinner on each CPU of `cpus`; returns once all run.
    init(cpus: [Int]) throws {
        let started = DispatchGroup()
        let failures = ManagedAtomic(0)
        for cpu in cpus {
            started.enter()
            finished.enter()
            let thread = Thread { [stopFlag, finished] in
                if (try? ThreadScheduling.setAffinity(CPUList([cpu]), of: ThreadScheduling.currentThreadID())) == nil {
                    failures.wrappingIncrement(ordering: .relaxed)
                }
                started.leave()
                var spins: UInt64 = 0
                while !stopFlag.load(ordering: .relaxed) { spins &+= 1 }
                finished.leave()
            }
            thread.name = "bench-busy-\(cpu)"
            thread.start()
        }
        started.wait()
        if failures.load(ordering: .relaxed) > 0 {
            stop()
            throw BenchError("cannot pin the busy threads to CPUs \(cpus)")
        }
    }

    func stop() {
        guard !stopFlag.exchange(true, ordering: .relaxed) else { return }
        finished.wait()
    }

    deinit { stop() }
}
