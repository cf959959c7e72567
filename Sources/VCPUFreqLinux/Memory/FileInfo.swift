import CVCPUFreqSys
import SystemPackage

/// What the daemon checks about a file another process sent before mapping
/// it: a mapping beyond the file's end faults (SIGBUS) on first touch, so
/// the size must cover the mapping, and only a file sealed against
/// shrinking stays that long (QEMU's memory-backend-memfd seals by default).
public struct FileInfo: Equatable, Sendable {
    public var size: Int64
    public var isRegular: Bool
    /// F_SEAL_SHRINK is set: the file can never become shorter than `size`.
    public var cannotShrink: Bool

    public init(size: Int64, isRegular: Bool, cannotShrink: Bool) {
        self.size = size
        self.isRegular = isRegular
        self.cannotShrink = cannotShrink
    }

    /// fstat(2) and F_GET_SEALS of `descriptor`.
    public static func of(_ descriptor: FileDescriptor) throws(Errno) -> FileInfo {
        var size: Int64 = 0
        var regular: Int32 = 0
        _ = try valueOrErrno { system_file_size(descriptor.rawValue, &size, &regular) }
        let seals = system_file_seals(descriptor.rawValue)
        return FileInfo(size: size, isRegular: regular != 0, cannotShrink: seals >= 0 && seals & vcpufreq_sys_seal_shrink() != 0)
    }
}
