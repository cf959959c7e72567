import SystemPackage

/// The few cgroupfs operations the cgroup actuator needs, behind a protocol
/// so tests run the actuator against an in-memory tree (this host has no
/// cgroup v2 cpu controller). Paths are absolute.
public protocol CgroupFiles: AnyObject {
    /// mkdir; an existing directory is not an error.
    func makeDirectory(_ path: String) throws(Errno)
    /// rmdir of a cgroup (the kernel refuses while it has members: EBUSY).
    func removeDirectory(_ path: String) throws(Errno)
    /// One write(2) of `bytes`: one cgroupfs command.
    func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(Errno)
    func read(_ path: String) throws(Errno) -> String
}

extension CgroupFiles {
    public func write(_ text: String, to path: String) throws(Errno) {
        var text = text
        let result = text.withUTF8 { buffer in
            Result { () throws(Errno) in try write(UnsafeRawBufferPointer(buffer), to: path) }
        }
        try result.get()
    }
}

/// The real cgroupfs.
public final class KernelCgroupFiles: CgroupFiles {
    public init() {}

    public func makeDirectory(_ path: String) throws(Errno) {
        do {
            try FileIO.makeDirectory(path)
        } catch .fileExists {
            return
        }
    }

    public func removeDirectory(_ path: String) throws(Errno) { try FileIO.removeDirectory(path) }

    public func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(Errno) {
        try FileIO.write(bytes, to: path)
    }

    public func read(_ path: String) throws(Errno) -> String { try FileIO.readText(path, limit: 64 * 1024) }
}
