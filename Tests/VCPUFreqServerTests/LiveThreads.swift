import Foundation
import Glibc
import Testing
import VCPUFreqLinux

/// The scheduling attributes of a live thread as the kernel reports them,
/// read without the daemon's code: the EEVDF slice from /proc/<tid>/sched,
/// nice with getpriority(2), the CPU mask with sched_getaffinity(2).
struct LiveAttributes: Equatable, CustomStringConvertible {
    var sliceNanoseconds: UInt64?
    var nice: Int32?
    var cpus: [Int]?

    static func of(_ tid: Int32) -> LiveAttributes {
        LiveAttributes(sliceNanoseconds: slice(tid), nice: nice(tid), cpus: affinity(tid))
    }

    /// `se.slice` of /proc/<tid>/sched (ns; printed as an integer since 6.6).
    static func slice(_ tid: Int32) -> UInt64? {
        guard let text = try? String(contentsOfFile: "/proc/\(tid)/sched", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == "se.slice" else { continue }
            return UInt64(parts[1].trimmingCharacters(in: .whitespaces))
        }
        return nil
    }

    /// getpriority(PRIO_PROCESS, tid); nil when the thread is gone.
    static func nice(_ tid: Int32) -> Int32? {
        errno = 0
        let value = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(tid))
        return value == -1 && errno != 0 ? nil : value
    }

    /// sched_getaffinity(tid) as ascending CPU ids: libc's function, looked
    /// up with dlsym (Swift's Glibc module does not export it), on a
    /// 1 KiB mask (8192 CPUs).
    static func affinity(_ tid: Int32) -> [Int]? {
        guard let getAffinity else { return nil }
        var mask = [UInt8](repeating: 0, count: 1024)
        let result = mask.withUnsafeMutableBytes { getAffinity(tid, $0.count, $0.baseAddress!) }
        guard result == 0 else { return nil }
        return (0..<(mask.count * 8)).filter { mask[$0 / 8] & (1 << UInt8($0 % 8)) != 0 }
    }

    private typealias GetAffinity = @convention(c) (pid_t, Int, UnsafeMutableRawPointer) -> Int32
    private static let getAffinity: GetAffinity? = dlsym(nil, "sched_getaffinity").map { unsafeBitCast($0, to: GetAffinity.self) }

    var description: String {
        "slice \(sliceNanoseconds.map { "\($0) ns" } ?? "?"), nice \(nice.map(String.init) ?? "?"), cpus \(cpus?.description ?? "?")"
    }
}

/// The vCPU threads of the VMM the test plays: real threads of this
/// process that idle (blocked on an eventfd) until stopped. Stopped in deinit.
final class VCPUThreads {
    private(set) var threads: [ScratchThread]
    /// Attributes of each thread before any daemon touched it.
    let originals: [LiveAttributes]

    init(count: Int = 2) throws {
        threads = try (0..<count).map { _ in try ScratchThread() }
        originals = threads.map { LiveAttributes.of($0.tid) }
    }

    var tids: [Int32] { threads.map(\.tid) }
    var live: [LiveAttributes] { tids.map(LiveAttributes.of) }

    /// Every thread has its original attributes back.
    var restored: Bool { live == originals }

    /// Waits until every thread has its original attributes (the daemon
    /// restores asynchronously after a disconnect or a signal).
    func waitUntilRestored(timeoutSeconds: Double = 5) -> Bool {
        eventually(timeoutSeconds: timeoutSeconds) { restored }
    }

    /// Ends thread `index` (the VMM's vCPU thread exits).
    func stop(_ index: Int) { threads[index].stop() }

    deinit { for thread in threads { thread.stop() } }
}
