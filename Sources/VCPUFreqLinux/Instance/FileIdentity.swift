/// Which file a path or descriptor names: its file system's device and its
/// inode. A path re-created by someone else names another identity, which
/// is how the daemon tells its own socket file (or lock file) from one that
/// replaced it.
public struct FileIdentity: Equatable, Hashable, Sendable, CustomStringConvertible {
    public struct Device: Equatable, Hashable, Sendable {
        public var major: UInt32
        public var minor: UInt32
        public init(major: UInt32, minor: UInt32) {
            self.major = major
            self.minor = minor
        }
    }

    public var device: Device
    public var inode: UInt64

    public init(device: Device, inode: UInt64) {
        self.device = device
        self.inode = inode
    }

    /// What `path` names now (not following a final symlink); nil when nothing is there.
    public static func of(path: String) -> FileIdentity? { FileStatusProbe.identity(of: path) }

    /// `major:minor:inode`, as /proc/locks prints it (major and minor in hex).
    public var description: String {
        "\(String(device.major, radix: 16)):\(String(device.minor, radix: 16)):\(inode)"
    }
}
