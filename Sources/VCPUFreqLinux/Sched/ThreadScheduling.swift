import SystemPackage
import VCPUFreqCore

/// Scheduling operations on one kernel thread, named by its TID (which
/// may belong to another process: the VMM's vCPU threads). Changing another
/// owner's thread needs CAP_SYS_NICE (EPERM otherwise); a thread that has
/// exited gives ESRCH.
public enum ThreadScheduling {
    /// The calling thread's TID (gettid(2)).
    public static func currentThreadID() -> Int32 { system_gettid() }

    /// sched_setattr(2). `attr.size` says how much of the struct the kernel
    /// reads (56 with clamps, 48 without). Encodes on the stack: no allocation.
    public static func setAttributes(
        _ attr: SchedAttr, of tid: Int32, retryOnInterrupt: Bool = true
    ) throws(Errno) {
        let result = withUnsafeTemporaryAllocation(byteCount: SchedAttr.sizeWithUtilClamp, alignment: 8) { buffer in
            attr.encode(into: buffer)
            let length = min(Int(attr.size), SchedAttr.sizeWithUtilClamp)
            let bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(buffer)[0..<length])
            return syscallResult(retryOnInterrupt: retryOnInterrupt) { system_sched_setattr(tid, bytes, 0) }
        }
        _ = try result.get()
    }

    /// sched_getattr(2) with room for the clamps; `size` of the result is
    /// what the kernel filled.
    public static func attributes(of tid: Int32, retryOnInterrupt: Bool = true) throws(Errno) -> SchedAttr {
        var bytes = [UInt8](repeating: 0, count: SchedAttr.sizeWithUtilClamp)
        let result = bytes.withUnsafeMutableBytes { buffer in
            syscallResult(retryOnInterrupt: retryOnInterrupt) { system_sched_getattr(tid, buffer, 0) }
        }
        _ = try result.get()
        return SchedAttr(decoding: bytes)
    }

    /// sched_setaffinity(2). CPU ids come from a CPUList (0...8191); an
    /// empty list or CPUs all offline give EINVAL from the kernel.
    public static func setAffinity(_ cpus: CPUList, of tid: Int32, retryOnInterrupt: Bool = true) throws(Errno) {
        let ids = cpus.ids
        let result = withUnsafeTemporaryAllocation(of: Int32.self, capacity: max(ids.count, 1)) { buffer in
            for (index, id) in ids.enumerated() { buffer[index] = Int32(clamping: id) }
            let used = UnsafeBufferPointer(rebasing: UnsafeBufferPointer(buffer)[0..<ids.count])
            return syscallResult(retryOnInterrupt: retryOnInterrupt) { system_sched_setaffinity(tid, used) }
        }
        _ = try result.get()
    }

    /// sched_getaffinity(2).
    public static func affinity(of tid: Int32, retryOnInterrupt: Bool = true) throws(Errno) -> CPUList {
        var ids = [Int32](repeating: 0, count: CPUList.maximumCPUID + 1)
        let result = ids.withUnsafeMutableBufferPointer { buffer in
            syscallResult(retryOnInterrupt: retryOnInterrupt) { system_sched_getaffinity(tid, buffer) }
        }
        let count = try result.get()
        return CPUList(ids.prefix(Int(min(count, Int32(ids.count)))).map(Int.init))
    }

    /// getpriority(PRIO_PROCESS, tid): the thread's nice value.
    public static func nice(of tid: Int32, retryOnInterrupt: Bool = true) throws(Errno) -> Int32 {
        var value: Int32 = 0
        _ = try valueOrErrno(retryOnInterrupt: retryOnInterrupt) { system_getpriority(tid, &value) }
        return value
    }

    /// setpriority(PRIO_PROCESS, tid, nice): per-thread nice on Linux.
    /// Lowering nice below the thread's current value needs CAP_SYS_NICE.
    public static func setNice(_ nice: Int32, of tid: Int32, retryOnInterrupt: Bool = true) throws(Errno) {
        _ = try valueOrErrno(retryOnInterrupt: retryOnInterrupt) { system_setpriority(tid, nice) }
    }

    /// Sets or clears SCHED_RESET_ON_FORK and changes nothing else. The
    /// kernel stores the flag only from a call that names the policy: with
    /// SCHED_FLAG_KEEP_POLICY it keeps the thread's current value
    /// (__sched_setscheduler: `policy < 0` takes `p->sched_reset_on_fork`),
    /// so the clamp writes, which keep the policy, cannot set it. This call
    /// repeats the thread's own policy and parameters (sched_getattr) with
    /// the flag, which the kernel's "not changing anything" path stores.
    /// A no-op when the flag is already as wanted.
    public static func setResetOnFork(_ enabled: Bool, of tid: Int32) throws(Errno) {
        var attr = try attributes(of: tid)
        guard attr.flags.contains(.resetOnFork) != enabled else { return }
        attr.size = UInt32(SchedAttr.sizeWithoutUtilClamp)  // the clamps stay as they are
        attr.flags = enabled ? .resetOnFork : []
        try setAttributes(attr, of: tid)
    }
}
