import SystemPackage

/// Small whole-file reads and writes for /proc, cgroupfs and the journal,
/// with swift-system's untyped throws narrowed to Errno.
enum FileIO {
    /// Reads at most `limit` bytes (procfs and cgroupfs files are small; the
    /// bound keeps a hostile or huge file from costing memory).
    static func read(_ path: String, limit: Int = 1 << 20) throws(Errno) -> [UInt8] {
        try errno {
            let fd = try FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec])
            return try fd.closeAfter {
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                while bytes.count < limit {
                    let count = try chunk.withUnsafeMutableBytes { try fd.read(into: $0) }
                    if count == 0 { break }
                    bytes.append(contentsOf: chunk[0..<min(count, limit - bytes.count)])
                }
                return bytes
            }
        }
    }

    static func readText(_ path: String, limit: Int = 1 << 20) throws(Errno) -> String {
        String(decoding: try read(path, limit: limit), as: UTF8.self)
    }

    /// Writes `text` in one write(2) call, as cgroupfs wants: each write is
    /// one command (`cgroup.threads` takes one TID per write).
    static func write(_ text: String, to path: String, create: Bool = false) throws(Errno) {
        try errno {
            let options: FileDescriptor.OpenOptions = create ? [.closeOnExec, .create, .truncate] : [.closeOnExec]
            let fd = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: options, permissions: create ? [.ownerReadWrite] : nil)
            try fd.closeAfter { _ = try fd.writeAll(Array(text.utf8)) }
        }
    }

    /// One write(2) of raw bytes to an existing file (cgroupfs control files).
    static func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(Errno) {
        try errno {
            let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec])
            try fd.closeAfter { _ = try fd.write(bytes) }
        }
    }

    static func makeDirectory(_ path: String, mode: FilePermissions = [.ownerReadWriteExecute, .groupRead, .groupExecute, .otherRead, .otherExecute]) throws(Errno) {
        let result = path.withCString { cPath in syscallResult { system_mkdir(cPath, mode.rawValue) } }
        _ = try result.get()
    }

    static func removeDirectory(_ path: String) throws(Errno) {
        let result = path.withCString { cPath in syscallResult { system_rmdir(cPath) } }
        _ = try result.get()
    }

    static func exists(_ path: String) -> Bool { FileStatusProbe.kind(of: path) != .missing }

    private static func errno<R>(_ body: () throws -> R) throws(Errno) -> R {
        do {
            return try body()
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
    }
}
