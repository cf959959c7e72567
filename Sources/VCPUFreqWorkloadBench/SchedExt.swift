import Foundation

/// Configuration 5's prerequisites, read from the kernel and the daemon:
/// sched_ext in the kernel (`/sys/kernel/sched_ext`), the daemon's own
/// report that it loaded its scheduler (`serve --scheduler sched-ext`; the
/// STATUS document's `daemon.scheduler`, "loaded" or why not), and the
/// kernel's word that a BPF scheduler is enabled (`state`, `root/ops`).
public enum SchedExt {
    public static let root = "/sys/kernel/sched_ext"
    /// The `serve` options that load it.
    public static let serveArguments = ["--scheduler", "sched-ext"]

    /// Why this host cannot run configuration 5, or nil when its kernel has sched_ext.
    public static func hostUnavailableReason(root: String = root) -> String? {
        FileManager.default.fileExists(atPath: root + "/state") ? nil : "not on this host (no sched_ext)"
    }

    /// The kernel's state ("enabled", "disabled", ...), nil when unreadable.
    public static func kernelState(root: String = root) -> String? { read(root + "/state") }

    /// The name of the BPF scheduler the kernel runs, nil when none.
    public static func loadedOps(root: String = root) -> String? {
        guard let ops = read(root + "/root/ops"), !ops.isEmpty else { return nil }
        return ops
    }

    /// What a daemon's STATUS JSON says about its scheduler: the value of
    /// `daemon.scheduler`, nil when the daemon does not report one.
    public static func daemonReport(statusJSON: [UInt8]) -> String? {
        guard let document = try? JSONSerialization.jsonObject(with: Data(statusJSON)) as? [String: Any],
            let daemon = document["daemon"] as? [String: Any]
        else { return nil }
        return daemon["scheduler"] as? String
    }

    /// Whether a report means loaded ("loaded", "loaded: vcpufreq", ...).
    public static func isLoaded(_ report: String?) -> Bool { report?.hasPrefix("loaded") == true }

    static func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
