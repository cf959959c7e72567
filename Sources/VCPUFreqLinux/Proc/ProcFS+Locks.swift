/// What procfs says about another daemon holding a lock: who holds it
/// (/proc/locks, the kernel's own list) and whether it has a stop signal
/// waiting (/proc/<pid>/status).
extension ProcFS {
    /// The pid holding a flock(2) write lock on the file with this device
    /// and inode, from `/proc/locks`; nil when none is listed (or the holder
    /// is in another pid namespace, where the kernel shows no pid).
    public func flockHolder(device: FileIdentity.Device, inode: UInt64) -> Int32? {
        guard let text = try? FileIO.readText(root + "/locks", limit: 4 << 20) else { return nil }
        return Self.parseFlockHolder(locks: text, device: device, inode: inode)
    }

    /// The signals pending for process `pid` (its main thread's and the
    /// process-wide set, `SigPnd` | `ShdPnd`), as the kernel's mask: bit
    /// `n - 1` is signal `n`. nil when the process is gone.
    public func pendingSignals(ofProcess pid: Int32) -> UInt64? {
        guard pid > 0, let text = try? FileIO.readText("\(root)/\(pid)/status", limit: 64 * 1024) else { return nil }
        return Self.parsePendingSignals(status: text)
    }

    /// A `/proc/locks` line is `N: FLOCK  ADVISORY  WRITE <pid> <major>:<minor>:<inode> <start> <end>`,
    /// major and minor in hex (fs/locks.c); waiters' lines have ` -> `
    /// after the number and are skipped.
    public static func parseFlockHolder(locks: String, device: FileIdentity.Device, inode: UInt64) -> Int32? {
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[3] == "WRITE" else { continue }
            let place = fields[5].split(separator: ":")
            guard place.count == 3, UInt32(place[0], radix: 16) == device.major, UInt32(place[1], radix: 16) == device.minor,
                UInt64(place[2]) == inode, let pid = Int32(fields[4]), pid > 0
            else { continue }
            return pid
        }
        return nil
    }

    /// `SigPnd` | `ShdPnd` of a status file (hex masks); nil when neither is there.
    public static func parsePendingSignals(status: String) -> UInt64? {
        var mask: UInt64?
        for line in status.split(separator: "\n") where line.hasPrefix("SigPnd:") || line.hasPrefix("ShdPnd:") {
            guard let value = UInt64(line.dropFirst("SigPnd:".count).trimmingSpaces(), radix: 16) else { continue }
            mask = (mask ?? 0) | value
        }
        return mask
    }
}
