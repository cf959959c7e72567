import Glibc
import Testing

@testable import VCPUFreqBPF

/// Runs `body` on a new thread pinned to `cpu` and measures it
/// over one window that is the same for the BPF programs and for the kernel's
/// own accounting: from a moment the thread is blocked at its start gate,
/// off its CPU, to a moment it is blocked at an end gate after `body`, off
/// its CPU again. The kernel's counters are read from outside at both ends
/// (/proc/self/task/TID), the thread is tracked at the start and its BPF
/// stats are read at the end; only then is it let go to exit.
///
/// Why both ends are blocked, off-CPU moments: there every counter of both
/// sides is final. A running thread's `se.sum_exec_runtime` in /proc is only
/// brought up to date at a tick or a switch, and the BPF side adds a running
/// slice from a switch-in it may not have seen (docs/bpf.md). And the window
/// leaves out the thread's start-up and exit path: on a busy machine those
/// are preempted and wait too, and a side that saw them and a side that did
/// not would differ by whatever they met.
///
/// In the window the thread wakes at the start gate, runs `body`, and blocks
/// in the end gate's read: one wake-up and one voluntary switch of its own
/// besides what `body` does.
///
/// Its start gate is opened from its own CPU (`openLocally`), which makes
/// the start of the window visible to the programs whatever else runs there.
///
/// With `roundRobinPriority` the thread is made SCHED_RR at that priority
/// while it waits at its start gate, so it wakes as a real-time thread (a
/// thread that switched itself would first have to get a CPU as a CFS one).
func runTracked(
    _ monitor: VCPUThreadMonitor, cpu: Int, roundRobinPriority: Int32? = nil,
    sourceLocation: SourceLocation = #_sourceLocation, _ body: @escaping () -> Void
) throws -> (kernel: KernelThreadCounters, stats: ThreadStats, tid: Int32) {
    let endGate = try Gate(sourceLocation: sourceLocation)
    let finished = try Gate(sourceLocation: sourceLocation)
    let thread = try #require(
        NativeThread(cpu: cpu) {
            body()
            finished.open()
            endGate.wait()
        }, sourceLocation: sourceLocation)
    defer {
        endGate.open()
        thread.join()
    }
    // Between reporting its TID and its start gate the thread can only block
    // in the gate's read.
    try #require(
        ThreadState.waitUntilBlocked(tid: thread.tid) { _ in true }, "thread \(thread.tid) never blocked at its start gate",
        sourceLocation: sourceLocation)
    if let priority = roundRobinPriority {
        try #require(
            Support.setRoundRobin(tid: thread.tid, priority: priority), "SCHED_RR refused: errno \(errno)",
            sourceLocation: sourceLocation)
    }
    let before = try #require(KernelThreadCounters.of(tid: thread.tid), sourceLocation: sourceLocation)
    try monitor.track(tid: thread.tid)
    defer { _ = try? monitor.untrack(tid: thread.tid) }
    try openLocally(thread, cpu: cpu, sourceLocation: sourceLocation)
    // Blocked meanwhile (polling would wake up on the thread's CPU and
    // preempt it). Once `body` is done, the thread's next block is the end
    // gate's read (checked by its descriptor, too).
    try #require(
        finished.wait(timeoutMilliseconds: 60_000), "thread \(thread.tid) never finished its work",
        sourceLocation: sourceLocation)
    try #require(
        ThreadState.waitUntilBlocked(tid: thread.tid) { $0.firstArgument == UInt64(endGate.readEnd) },
        "thread \(thread.tid) never blocked at its end gate", sourceLocation: sourceLocation)
    let after = try #require(KernelThreadCounters.of(tid: thread.tid), sourceLocation: sourceLocation)
    let stats = try #require(try monitor.stats(tid: thread.tid), sourceLocation: sourceLocation)
    return (after - before, stats, thread.tid)
}

/// Opens the start gate of `thread`, pinned to `cpu`, from a short-lived
/// thread on `cpu` (SCHED_FIFO one above `Support.roundRobinPriority`, so a
/// real-time hog there cannot hold it off). The wake-up is then raised on the
/// thread's own CPU in the opener's context, where the programs always see it
/// and take the thread's bases while it is still off its CPU. Opened from
/// another CPU, the kernel may queue the wake-up to the thread's CPU and raise
/// it there in an interrupt, which the development VMs hide from the programs
/// when their sandbox's agent is running on that CPU; the thread's switch-in
/// from the agent is hidden too (bpf/vcpufreq.bpf.c), and its first run would
/// then count from the moment it was tracked.
func openLocally(_ thread: NativeThread, cpu: Int, sourceLocation: SourceLocation = #_sourceLocation) throws {
    let opener = try #require(
        NativeThread {
            NativeThread.pin(toCPU: cpu)
            thread.release()
        }, sourceLocation: sourceLocation)
    defer { opener.join() }
    try #require(
        ThreadState.waitUntilBlocked(tid: opener.tid) { _ in true }, "opener never blocked at its start gate",
        sourceLocation: sourceLocation)
    try #require(
        Support.setRealtime(tid: opener.tid, policy: SCHED_FIFO, priority: Support.roundRobinPriority + 1),
        "SCHED_FIFO refused: errno \(errno)", sourceLocation: sourceLocation)
    opener.release()
}

/// A pipe one thread blocks on until another opens it.
final class Gate: Sendable {
    let readEnd: Int32
    let writeEnd: Int32

    init(sourceLocation: SourceLocation = #_sourceLocation) throws {
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0, "pipe: errno \(errno)", sourceLocation: sourceLocation)
        (readEnd, writeEnd) = (fds[0], fds[1])
    }

    /// Blocks the calling thread until `open()`.
    func wait() {
        var byte: UInt8 = 0
        while read(readEnd, &byte, 1) < 0 && errno == EINTR {}
    }

    /// Blocks until `open()` or the timeout; whether it was opened.
    func wait(timeoutMilliseconds: Int32) -> Bool {
        var entry = pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0)
        var ready = poll(&entry, 1, timeoutMilliseconds)
        while ready < 0 && errno == EINTR { ready = poll(&entry, 1, timeoutMilliseconds) }
        return ready == 1
    }

    func open() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    deinit {
        close(readEnd)
        close(writeEnd)
    }
}

/// What the kernel says about a thread of this process from outside it.
enum ThreadState {
    /// The system call a thread is blocked in.
    struct BlockedCall {
        /// Its first argument (a file descriptor for read).
        var firstArgument: UInt64
    }

    /// The system call thread `tid` is blocked in, or nil while it runs, is
    /// runnable, or is gone. /proc/PID/task/TID/syscall is answered for a
    /// blocked task only once it is off its CPU (the kernel's
    /// wait_task_inactive() waits for that, and says "running" when the task
    /// woke meanwhile), which is what makes it the test's signal: a task
    /// that has set its state to sleep is still on its CPU, still counting
    /// runtime, until its switch-out completes.
    static func blockedCall(tid: Int32) -> BlockedCall? {
        guard let text = FileSystems.readSmallFile("/proc/self/task/\(tid)/syscall") else { return nil }
        let fields = text.split(separator: " ")
        // "NUMBER 0xARG1 ...", or "running".
        guard fields.count >= 2, Int(fields[0]) != nil, fields[1].hasPrefix("0x"),
            let argument = UInt64(fields[1].dropFirst(2), radix: 16)
        else { return nil }
        return BlockedCall(firstArgument: argument)
    }

    /// Polls until thread `tid` is blocked, off its CPU, in a call `accept`
    /// accepts; false after `timeoutNanoseconds`.
    static func waitUntilBlocked(
        tid: Int32, timeoutNanoseconds: UInt64 = 10_000_000_000, _ accept: (BlockedCall) -> Bool
    ) -> Bool {
        waitUntil(timeoutNanoseconds: timeoutNanoseconds) { blockedCall(tid: tid).map(accept) == true }
    }

    /// Polls `condition` every 0.2 ms until it holds; false after
    /// `timeoutNanoseconds` (generous: a loaded machine is slow, not wrong).
    static func waitUntil(timeoutNanoseconds: UInt64 = 10_000_000_000, _ condition: () -> Bool) -> Bool {
        let deadline = NativeThread.monotonicNanoseconds() + timeoutNanoseconds
        while NativeThread.monotonicNanoseconds() < deadline {
            if condition() { return true }
            NativeThread.sleep(nanoseconds: 200_000)
        }
        return false
    }
}
