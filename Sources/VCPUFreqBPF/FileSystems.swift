import Glibc

/// The pseudo file systems the programs need: tracefs for tracepoint/kvm/*
/// (libbpf reads tracepoint ids there) and bpffs for the pinned util-hint map.
/// Both are mounted when missing, as `mount -t tracefs nodev
/// /sys/kernel/tracing` and `mount -t bpf bpf /sys/fs/bpf` would.
enum FileSystems {
    static let defaultTracefsPath = "/sys/kernel/tracing"
    static let defaultBPFFSPath = "/sys/fs/bpf"

    /// The type of the file system mounted last (the visible one) at `path`,
    /// from /proc/self/mounts; nil when nothing is mounted there.
    static func mountedType(at path: String, mounts: String? = readSmallFile("/proc/self/mounts")) -> String? {
        var type: String?
        for line in (mounts ?? "").split(separator: "\n") {
            let fields = line.split(separator: " ")
            // /proc/mounts escapes spaces as \040; our paths have none.
            if fields.count >= 3, fields[1] == path { type = String(fields[2]) }
        }
        return type
    }

    /// Mounts `type` at `path` unless one is there already; returns whether it
    /// mounted one. Throws `BPFError.mountFailed` with the errno.
    @discardableResult
    static func ensureMounted(type: String, source: String, at path: String) throws -> Bool {
        if mountedType(at: path) == type { return false }
        guard mount(source, path, type, 0, nil) == 0 else {
            throw BPFError.mountFailed(fileSystem: type, path: path, reason: LibBPF.reason(errno: errno))
        }
        return true
    }

    static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// A /proc or /sys file of at most 64 KiB, or nil.
    static func readSmallFile(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count < 65536 {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Creates `path` and its parents (mode 0700: pinned maps are the daemon's).
    static func makeDirectories(_ path: String) -> Int32 {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/" + component
            if mkdir(current, 0o700) != 0 && errno != EEXIST { return errno }
        }
        return 0
    }
}
