import CVCPUFreqSys
import Glibc

/// A plain pthread with a known kernel TID, optionally pinned to one CPU and
/// held at a start gate until `release()`: what the benchmark (and the
/// tests) need to track a thread before it does anything. Not for the daemon.
final class NativeThread: @unchecked Sendable {
    /// The thread's kernel TID, known once `init` returns.
    let tid: Int32
    private let thread: pthread_t
    private let gate: (read: Int32, write: Int32)
    private var joined = false

    /// Context handed to the new thread: its body and the pipes it reports on.
    private final class Context {
        let body: () -> Void
        let cpu: Int?
        let tidPipe: Int32
        let gate: Int32
        init(body: @escaping () -> Void, cpu: Int?, tidPipe: Int32, gate: Int32) {
            self.body = body
            self.cpu = cpu
            self.tidPipe = tidPipe
            self.gate = gate
        }
    }

    /// Starts a thread that reports its TID, pins itself to `cpu`, then waits
    /// for `release()` before running `body`. Returns nil when the thread
    /// cannot be made (the error number of pthread_create or pipe).
    init?(cpu: Int? = nil, body: @escaping () -> Void) {
        var tidPipe: [Int32] = [0, 0]
        var gatePipe: [Int32] = [0, 0]
        guard pipe(&tidPipe) == 0 else { return nil }
        guard pipe(&gatePipe) == 0 else {
            close(tidPipe[0]); close(tidPipe[1])
            return nil
        }
        let context = Context(body: body, cpu: cpu, tidPipe: tidPipe[1], gate: gatePipe[0])
        let retained = Unmanaged.passRetained(context).toOpaque()
        var handle = pthread_t()
        let created = pthread_create(&handle, nil, { raw in
            let context = Unmanaged<Context>.fromOpaque(raw!).takeRetainedValue()
            if let cpu = context.cpu { _ = NativeThread.pin(toCPU: cpu) }
            var tid = vcpufreq_sys_gettid()
            _ = write(context.tidPipe, &tid, MemoryLayout<Int32>.size)
            var byte: UInt8 = 0
            while read(context.gate, &byte, 1) < 0 && errno == EINTR {}
            context.body()
            return nil
        }, retained)
        guard created == 0 else {
            Unmanaged<Context>.fromOpaque(retained).release()
            for fd in tidPipe + gatePipe { close(fd) }
            return nil
        }
        var reported: Int32 = 0
        while read(tidPipe[0], &reported, MemoryLayout<Int32>.size) < 0 && errno == EINTR {}
        close(tidPipe[0]); close(tidPipe[1])
        thread = handle
        tid = reported
        gate = (gatePipe[0], gatePipe[1])
    }

    /// Lets the thread run its body.
    func release() {
        var byte: UInt8 = 1
        _ = write(gate.write, &byte, 1)
    }

    /// Waits for the body to finish (releasing it first if needed).
    func join() {
        guard !joined else { return }
        release()
        pthread_join(thread, nil)
        joined = true
        close(gate.read); close(gate.write)
    }

    deinit { join() }

    /// Pins the calling thread to one CPU; returns 0 or the errno.
    @discardableResult
    static func pin(toCPU cpu: Int) -> Int32 {
        var set = cpu_set_t()
        let bitsPerWord = UInt.bitWidth
        let fits = withUnsafeMutableBytes(of: &set) { raw -> Bool in
            let words = raw.bindMemory(to: UInt.self)
            guard cpu >= 0, cpu / bitsPerWord < words.count else { return false }
            words[cpu / bitsPerWord] |= 1 << UInt(cpu % bitsPerWord)
            return true
        }
        guard fits, let setAffinity = schedSetAffinity else { return EINVAL }
        return setAffinity(0, MemoryLayout<cpu_set_t>.size, &set) == 0 ? 0 : errno
    }

    /// glibc's sched_setaffinity, looked up at run time: Swift's Glibc module
    /// is built without _GNU_SOURCE and hides it, and the project's C shim
    /// (CVCPUFreqSys) is not this module's to extend. (The Linux layer's
    /// affinity wrapper can replace this once both are merged.)
    private static let schedSetAffinity: (@convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "sched_setaffinity") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (pid_t, Int, UnsafeRawPointer) -> Int32).self)
    }()

    /// CPU time the calling thread has used, ns.
    static func threadCPUTimeNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// CLOCK_MONOTONIC, ns.
    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// Spins until the calling thread has used `nanoseconds` more CPU time.
    static func burnCPU(nanoseconds: UInt64) {
        let end = threadCPUTimeNanoseconds() + nanoseconds
        while threadCPUTimeNanoseconds() < end {}
    }

    /// Sleeps `nanoseconds` (restarting after signals).
    static func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        var remaining = timespec()
        while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
    }

    /// Number of CPUs the process may run on.
    static var onlineCPUs: Int { max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN))) }
}
