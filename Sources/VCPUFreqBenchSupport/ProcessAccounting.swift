import Foundation
import Glibc

/// The kernel's own accounting of threads and CPUs, as the benchmarks read
/// it to attribute time (who ran, who waited) and to charge CPU time to a
/// configuration.
///
/// - `/proc/PID/task/TID/schedstat`: ns on the CPU, ns runnable but waiting
///   on a run queue (CONFIG_SCHED_INFO; exact, per thread).
/// - `/proc/PID/stat` and `/proc/stat`: user + system and busy / steal time
///   in clock ticks (USER_HZ, 10 ms here), so only meaningful over a second
///   or more.
public enum ProcessAccounting {
    /// One thread's time from its schedstat.
    public struct ThreadTime: Sendable, Equatable {
        public var runNanoseconds: UInt64 = 0
        public var waitNanoseconds: UInt64 = 0

        public init(runNanoseconds: UInt64 = 0, waitNanoseconds: UInt64 = 0) {
            self.runNanoseconds = runNanoseconds
            self.waitNanoseconds = waitNanoseconds
        }

        public static func - (l: ThreadTime, r: ThreadTime) -> ThreadTime {
            ThreadTime(runNanoseconds: l.runNanoseconds &- r.runNanoseconds,
                       waitNanoseconds: l.waitNanoseconds &- r.waitNanoseconds)
        }

        public static func + (l: ThreadTime, r: ThreadTime) -> ThreadTime {
            ThreadTime(runNanoseconds: l.runNanoseconds &+ r.runNanoseconds,
                       waitNanoseconds: l.waitNanoseconds &+ r.waitNanoseconds)
        }
    }

    /// `run wait slices` of a schedstat file; zeros when unreadable.
    public static func threadTime(_ path: String) -> ThreadTime {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return ThreadTime() }
        let fields = text.split(separator: " ").compactMap { UInt64($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard fields.count >= 2 else { return ThreadTime() }
        return ThreadTime(runNanoseconds: fields[0], waitNanoseconds: fields[1])
    }

    /// Thread `tid` of process `pid` (this process when nil).
    public static func threadTime(pid: Int32?, tid: Int32) -> ThreadTime {
        threadTime("/proc/\(pid.map(String.init) ?? "self")/task/\(tid)/schedstat")
    }

    /// Every thread of process `pid`, added up (threads that exited since are not counted).
    public static func processThreadTime(pid: Int32) -> ThreadTime {
        threads(of: pid).reduce(ThreadTime()) { $0 + threadTime(pid: pid, tid: $1) }
    }

    /// utime + stime (fields 14 and 15) of a /proc/PID/stat, clock ticks.
    public static func processTicks(_ path: String) -> UInt64 {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
            let close = text.lastIndex(of: ")")
        else { return 0 }
        // After "pid (comm)": field 3 is the state; utime is field 14.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = UInt64(fields[11]), let system = UInt64(fields[12]) else { return 0 }
        return user &+ system
    }

    /// (busy, steal) of the `cpu` line of /proc/stat, clock ticks: busy =
    /// user + nice + system + irq + softirq (guest time is inside user).
    public static func systemTicks() -> (busy: UInt64, steal: UInt64) {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") })
        else { return (0, 0) }
        let values = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard values.count >= 8 else { return (0, 0) }
        return (values[0] &+ values[1] &+ values[2] &+ values[5] &+ values[6], values[7])
    }

    /// Clock ticks per second (USER_HZ).
    public static var ticksPerSecond: Double { Double(max(sysconf(Int32(_SC_CLK_TCK)), 1)) }

    /// TIDs of process `pid` (/proc/PID/task), ascending.
    public static func threads(of pid: Int32) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return names.compactMap { Int32($0) }.sorted()
    }

    /// CLOCK_MONOTONIC, ns.
    public static func monotonicNanoseconds() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}
