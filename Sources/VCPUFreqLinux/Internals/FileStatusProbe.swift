import Glibc

/// What kind of file a path names, without following a final symlink.
enum FileStatusProbe {
    enum Kind: Equatable { case missing, socket, directory, regular, other }

    static func kind(of path: String) -> Kind {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .missing }
        switch info.st_mode & S_IFMT {
        case S_IFSOCK: return .socket
        case S_IFDIR: return .directory
        case S_IFREG: return .regular
        default: return .other
        }
    }
}

extension FileStatusProbe {
    /// The device and inode of what `path` names (lstat: a final symlink is
    /// itself); nil when nothing is there.
    static func identity(of path: String) -> FileIdentity? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return identity(info)
    }

    /// The device and inode of an open descriptor (fstat).
    static func identity(ofDescriptor fd: Int32) -> FileIdentity? {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        return identity(info)
    }

    /// Whether an open descriptor is a regular file.
    static func isRegularFile(descriptor fd: Int32) -> Bool {
        var info = stat()
        return fstat(fd, &info) == 0 && info.st_mode & S_IFMT == S_IFREG
    }

    /// glibc's gnu_dev_major / gnu_dev_minor encoding of dev_t.
    private static func identity(_ info: stat) -> FileIdentity {
        let dev = UInt64(info.st_dev)
        let major = UInt32(truncatingIfNeeded: ((dev >> 8) & 0xfff) | ((dev >> 32) & ~UInt64(0xfff)))
        let minor = UInt32(truncatingIfNeeded: (dev & 0xff) | ((dev >> 12) & ~UInt64(0xff)))
        return FileIdentity(device: .init(major: major, minor: minor), inode: UInt64(info.st_ino))
    }
}
