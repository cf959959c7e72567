import Foundation
import VCPUFreqLinux

/// Threads of this process that only wait: the emulated VMMs' "vCPU
/// threads". Their TIDs are attached to the daemon, which applies hints to
/// them exactly as to real vCPU threads; the requests themselves come from
/// the load generator. One pool serves every VM of the run (the daemon
/// frees the TIDs at detach).
final class IdleThreads: @unchecked Sendable {
    /// Kernel TIDs, in creation order.
    let threadIDs: [Int32]
    private let gate: Gate

    /// A waiting thread needs almost no stack; 1024 of them stay small.
    static let stackBytes = 64 << 10

    /// Starts `count` threads and returns once every TID is known.
    init(count: Int) {
        let gate = Gate(count: count)
        for index in 0..<count {
            let thread = Thread { gate.run(index: index) }
            thread.stackSize = Self.stackBytes
            thread.name = "bench-vcpu-\(index)"
            thread.start()
        }
        threadIDs = gate.waitUntilStarted()
        self.gate = gate
    }

    /// Ends every thread and waits until they have all returned.
    func stop() { gate.stop() }

    deinit { stop() }

    /// What the threads share: their TIDs and the semaphore they wait on.
    /// (One semaphore signalled once per thread, not a broadcast condition:
    /// starting 1024 threads must not wake every earlier one each time.)
    private final class Gate: @unchecked Sendable {
        private let lock = NSLock()
        private var tids: [Int32]
        private let started = DispatchGroup()
        private let finished = DispatchGroup()
        private let release = DispatchSemaphore(value: 0)
        private var stopped = false

        init(count: Int) {
            tids = Array(repeating: 0, count: count)
            for _ in 0..<count {
                started.enter()
                finished.enter()
            }
        }

        func run(index: Int) {
            let tid = ThreadScheduling.currentThreadID()
            lock.lock()
            tids[index] = tid
            lock.unlock()
            started.leave()
            release.wait()
            finished.leave()
        }

        func waitUntilStarted() -> [Int32] {
            started.wait()
            lock.lock()
            defer { lock.unlock() }
            return tids
        }

        func stop() {
            lock.lock()
            let already = stopped
            stopped = true
            let count = tids.count
            lock.unlock()
            guard !already else { return }
            for _ in 0..<count { release.signal() }
            finished.wait()
        }
    }
}
