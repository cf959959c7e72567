import Glibc
import SystemPackage

/// Whole-file reads and directory listings for the sysfs walk, through the
/// hooked open(2), read(2) and close(2) (so a test can make one chosen file
/// fail with EACCES or EBUSY as a live host does), returning the errno of
/// the call that failed: the walker tells a missing file (ENOENT, normal)
/// from an unreadable one (a note).
enum SysfsFiles {
    /// The file's text, or why it could not be read. More than `limit` bytes is EFBIG.
    static func read(_ path: String, limit: Int) -> Result<String, Errno> {
        let descriptor = system_open_read_only(path)
        guard descriptor >= 0 else { return .failure(Errno(rawValue: Glibc.errno)) }
        defer { _ = system_close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= limit {
            let result = chunk.withUnsafeMutableBytes { buffer in syscallResult { system_read(descriptor, buffer) } }
            switch result {
            case .success(0): return .success(String(decoding: bytes, as: UTF8.self))
            case .success(let count): bytes.append(contentsOf: chunk[0..<count])
            case .failure(let error): return .failure(error)
            }
        }
        return .failure(.fileTooLarge)
    }

    /// Entry names of a directory (without `.` and `..`), or why it could not be listed.
    static func list(_ path: String) -> Result<[String], Errno> {
        let descriptor = system_open_read_only(path, directory: true)
        guard descriptor >= 0 else { return .failure(Errno(rawValue: Glibc.errno)) }
        guard let directory = fdopendir(descriptor) else {
            let error = Errno(rawValue: Glibc.errno)
            _ = system_close(descriptor)
            return .failure(error)
        }
        defer { closedir(directory) }  // closes the descriptor too
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return .success(names)
    }
}
