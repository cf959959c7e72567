import Glibc

/// Ownership of pinned maps between daemons: which map a pin names (by the
/// kernel's map id) and its removal only while it still names that map, so
/// a daemon never unpins a map another process pinned at the same path.
/// The daemon's use is in docs/bpf.md ("Pins and daemon instances").
public enum PinnedMaps {
    /// The id of the map pinned at `path`, or nil.
    public static func id(at path: String) -> UInt32? { LibBPF.pinnedMapID(path: path) }

    /// Unpins `path` if it still names map `id`; returns whether it did.
    /// The check and the unlink are two steps: callers hold the pin
    /// directory's lock, so no other vcpufreq daemon can pin there between.
    @discardableResult
    public static func unpin(_ path: String, ifMapID id: UInt32) -> Bool {
        guard Self.id(at: path) == id else { return false }
        return unlink(path) == 0
    }

    /// Makes `directory` usable for pins before anything is loaded: bpffs
    /// mounted at `bpffs` (when it is not, and `mount` allows it), then the
    /// directory and its parents created (0700). Returns what it mounted
    /// (or nil), or throws `BPFError.mountFailed` / a `mapOperationFailed`
    /// naming the directory.
    public static func prepareDirectory(_ directory: String, bpffs: String = "/sys/fs/bpf") throws -> String? {
        var mounted: String?
        if FileSystems.mountedType(at: bpffs) != "bpf" {
            if try FileSystems.ensureMounted(type: "bpf", source: "bpf", at: bpffs) { mounted = "bpf at \(bpffs)" }
        }
        let code = FileSystems.makeDirectories(directory)
        guard code == 0 else {
            throw BPFError.mapOperationFailed(map: directory, operation: "create pin directory", reason: LibBPF.reason(errno: code))
        }
        return mounted
    }
}
