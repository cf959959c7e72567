import Foundation
import SystemPackage

/// A short-lived thread of this process that only waits: capability
/// detection tries scheduler calls on it instead of on a real vCPU thread,
/// and tests use it as a live thread to change and inspect.
public final class ScratchThread: @unchecked Sendable {
    /// Its kernel TID.
    public let tid: Int32
    private let stopSignal: EventFD
    private let finished = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var stopped = false

    public init() throws(Errno) {
        let stopSignal = try EventFD(nonblocking: false)
        let started = DispatchSemaphore(value: 0)
        let finished = self.finished
        let box = TIDBox()
        let thread = Thread {
            box.tid = ThreadScheduling.currentThreadID()
            started.signal()
            // Blocks until stop(); a failed read (never expected) also ends the thread.
            _ = try? stopSignal.drain()
            finished.signal()
        }
        thread.name = "vcpufreq-scratch"
        thread.start()
        started.wait()
        self.stopSignal = stopSignal
        tid = box.tid
    }

    /// Ends the thread and waits until the kernel has removed it (its
    /// /proc/self/task entry is gone, at most about a second): afterwards the
    /// TID names no thread of this process.
    public func stop() {
        lock.lock()
        let alreadyStopped = stopped
        stopped = true
        lock.unlock()
        guard !alreadyStopped else { return }
        try? stopSignal.signal()
        finished.wait()
        // The thread returned from its body but may still be exiting.
        for _ in 0..<1000 where FileStatusProbe.kind(of: "/proc/self/task/\(tid)") != .missing {
            usleep(1000)
        }
    }

    deinit { stop() }

    private final class TIDBox: @unchecked Sendable {
        var tid: Int32 = 0
    }
}
