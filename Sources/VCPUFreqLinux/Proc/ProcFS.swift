import SystemPackage

/// Reads about threads from procfs. `root` is a parameter so the parsers
/// run against fixture trees in tests.
public struct ProcFS: Sendable {
    public var root: String

    public init(root: String = "/proc") { self.root = root }

    /// Whether `tid` is a thread of process `pid` right now
    /// (/proc/<pid>/task/<tid> exists). A VMM can only name its own threads.
    public func isThread(_ tid: Int32, ofProcess pid: Int32) -> Bool {
        guard tid > 0, pid > 0 else { return false }
        return FileStatusProbe.kind(of: "\(root)/\(pid)/task/\(tid)") == .directory
    }

    /// The thread's start time (field 22 of stat, clock ticks since boot):
    /// with the TID it names one thread for the life of the system, so a
    /// reused TID is told apart. nil when the thread is gone.
    public func startTime(ofThread tid: Int32, inProcess pid: Int32) -> UInt64? {
        guard tid > 0, pid > 0, let text = try? FileIO.readText("\(root)/\(pid)/task/\(tid)/stat", limit: 4096) else {
            return nil
        }
        return Self.parseStartTime(stat: text)
    }

    /// The thread's EEVDF slice, ns (`se.slice` of /proc/<tid>/sched); nil
    /// when the thread is gone or the kernel does not print it (before 6.6).
    public func eevdfSliceNanoseconds(ofThread tid: Int32) -> UInt64? {
        guard tid > 0, let text = try? FileIO.readText("\(root)/\(tid)/sched", limit: 64 * 1024) else { return nil }
        return Self.parseSchedField("se.slice", in: text)
    }

    /// The process (thread group) a thread belongs to: `Tgid:` of
    /// /proc/<tid>/status; nil when the thread is gone.
    public func processID(ofThread tid: Int32) -> Int32? {
        guard tid > 0, let text = try? FileIO.readText("\(root)/\(tid)/status", limit: 64 * 1024) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Tgid:") {
            return Int32(line.dropFirst("Tgid:".count).trimmingSpaces())
        }
        return nil
    }

    /// Every thread of process `pid` with its name (comm); empty when the
    /// process is gone. Threads that exit while this reads are left out.
    public func threads(ofProcess pid: Int32) -> [(tid: Int32, name: String)] {
        guard pid > 0, let names = SysfsReader.list("\(root)/\(pid)/task") else { return [] }
        var threads: [(tid: Int32, name: String)] = []
        for entry in names {
            guard let tid = Int32(entry), let comm = try? FileIO.readText("\(root)/\(pid)/task/\(entry)/comm", limit: 64) else { continue }
            threads.append((tid, comm.hasSuffix("\n") ? String(comm.dropLast()) : comm))
        }
        return threads.sorted { $0.tid < $1.tid }
    }

    /// The thread's cgroups (/proc/<tid>/cgroup); empty when it is gone.
    public func cgroups(ofThread tid: Int32) -> [CgroupMembership] {
        guard tid > 0, let text = try? FileIO.readText("\(root)/\(tid)/cgroup", limit: 64 * 1024) else { return [] }
        return CgroupMembership.parse(text)
    }

    /// Field 22 (starttime) of a stat line. The comm field (2) is in
    /// parentheses and may contain spaces and parentheses itself, so the
    /// fields are counted from the LAST ')'.
    public static func parseStartTime(stat: String) -> UInt64? {
        guard let close = stat.utf8.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // One pass, no array of fields: the daemon reads this for every
        // connection it accepts and every liveness check.
        var field = 2
        var inField = false
        var value: UInt64 = 0
        for byte in stat.utf8[stat.utf8.index(after: close)...] {
            if byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") {
                if inField, field == 22 { return value }
                inField = false
                continue
            }
            if !inField {
                inField = true
                field += 1
            }
            guard field == 22 else { continue }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (times10, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        return inField && field == 22 ? value : nil
    }

    /// A numeric field of /proc/<tid>/sched (`name   :   value`). Values the
    /// kernel prints split as `ms.nnnnnn` are returned in ns.
    public static func parseSchedField(_ name: String, in text: String) -> UInt64? {
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            guard parts.count == 2, parts[0].trimmingSpaces() == name else { continue }
            let value = parts[1].trimmingSpaces()
            if let integer = UInt64(value) { return integer }
            let split = value.split(separator: ".")
            guard split.count == 2, let whole = UInt64(split[0]), split[1].count == 6, let fraction = UInt64(split[1]) else {
                return nil
            }
            let (milliseconds, overflow) = whole.multipliedReportingOverflow(by: 1_000_000)
            return overflow ? nil : milliseconds + fraction
        }
        return nil
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" || $0 == "\r" }.reversed())
    }
}
