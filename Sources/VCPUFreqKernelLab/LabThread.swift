import Foundation
import SystemPackage
import VCPUFreqLinux

/// A stand-in for a VMM's vCPU thread: a real thread of this process that
/// sleeps (blocked on a condition variable, as an idle vCPU is in KVM_RUN
/// or a halt) and runs what it is given, so a check can make it create a
/// thread of its own (RESET_ON_FORK, the cgroup a child lands in) or do a
/// known amount of work (BPF host truth).
public final class LabThread: @unchecked Sendable {
    public let tid: Int32
    private let state = State()
    private let finished = DispatchSemaphore(value: 0)

    /// The work queue, shared with the thread's body.
    private final class State: @unchecked Sendable {
        let condition = NSCondition()
        var queue: [() -> Void] = []
        var stopped = false
    }

    public init() {
        let started = DispatchSemaphore(value: 0)
        let box = TIDBox()
        let state = self.state
        let finished = self.finished
        let thread = Thread {
            box.tid = ThreadScheduling.currentThreadID()
            started.signal()
            while true {
                state.condition.lock()
                while state.queue.isEmpty && !state.stopped { state.condition.wait() }
                if state.queue.isEmpty {
                    state.condition.unlock()
                    break
                }
                let work = state.queue.removeFirst()
                state.condition.unlock()
                work()
            }
            finished.signal()
        }
        thread.name = "vcpu-lab"
        thread.start()
        started.wait()
        tid = box.tid
    }

    /// Runs `body` on this thread and returns its result.
    public func run<T>(_ body: @escaping () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let result = ResultBox<T>()
        state.condition.lock()
        state.queue.append {
            result.value = body()
            done.signal()
        }
        state.condition.signal()
        state.condition.unlock()
        done.wait()
        return result.value!
    }

    /// A thread created by this one (pthread_create from it): it inherits
    /// what the kernel lets a child inherit.
    public func spawnChild() throws -> ScratchThread {
        let made: Result<ScratchThread, Errno> = run { Result { () throws(Errno) in try ScratchThread() } }
        return try made.get()
    }

    /// Runs for `busy` of its own CPU time (CLOCK_THREAD_CPUTIME_ID: time
    /// waiting for a CPU does not count), then sleeps for `sleep`, `rounds`
    /// times; returns when done.
    public func workAndSleep(busy: Duration, sleep: Duration, rounds: Int) {
        run {
            func cpuNanoseconds() -> Int64 {
                var now = timespec()
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
                return Int64(now.tv_sec) * 1_000_000_000 + Int64(now.tv_nsec)
            }
            let busyNanoseconds = busy.components.seconds * 1_000_000_000 + busy.components.attoseconds / 1_000_000_000
            let (seconds, attoseconds) = sleep.components
            for _ in 0..<rounds {
                let end = cpuNanoseconds() + busyNanoseconds
                while cpuNanoseconds() < end {}
                usleep(UInt32(seconds) * 1_000_000 + UInt32(attoseconds / 1_000_000_000_000))
            }
        }
    }

    /// Ends the thread and waits for it.
    public func stop() {
        state.condition.lock()
        let already = state.stopped
        state.stopped = true
        state.condition.signal()
        state.condition.unlock()
        if !already {
            finished.wait()
            for _ in 0..<1000 where exists("/proc/self/task/\(tid)") { usleep(1000) }
        }
    }

    deinit { stop() }

    private final class TIDBox: @unchecked Sendable { var tid: Int32 = 0 }
    private final class ResultBox<T>: @unchecked Sendable { var value: T? }
}
