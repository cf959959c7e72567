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
