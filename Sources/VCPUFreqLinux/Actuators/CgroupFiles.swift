import Foundation
import SystemPackage

/// The few cgroupfs operations the cgroup actuator needs, behind a protocol
/// so tests run the actuator against an in-memory tree (this host has no
/// cgroup v2 cpu controller). Paths are absolute.
public protocol CgroupFiles: AnyObject {
    /// The cgroup v2 path of a thread (`0::/path` of /proc/<tid>/cgroup, relative to the mount); nil when it is gone.
    func unifiedPath(ofThread tid: Int32) -> String?
    /// Names of the child cgroups (subdirectories) of `path`; empty when it has none or is gone.
    func subdirectories(_ path: String) -> [String]
    /// mkdir; an existing directory is not an error.
    func makeDirectory(_ path: String) throws(Errno)
    /// rmdir of a cgroup (the kernel refuses while it has members: EBUSY).
    func removeDirectory(_ path: String) throws(Errno)
    /// One write(2) of `bytes`: one cgroupfs command.
    func write(_ bytes: UnsafeRawBufferPointer, to path: String) throws(Errno)
    func read(_ path: String) throws(Errno) -> String
    /// Opens a control file for repeated writes (`cpu.uclamp.min`): the
    /// apply path then costs one write(2) per change, no open or path.
    func openControl(_ path: String) throws(Errno) -> any CgroupControlFile
}

/// A cgroupfs control file kept open; each write is one command.
public protocol CgroupControlFile: AnyObject {
    func write(_ bytes: UnsafeRawBufferPointer) throws(Errno)
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
    let procfs: ProcFS

    public init(procfs: ProcFS = ProcFS()) { self.procfs = procfs }

    public func unifiedPath(ofThread tid: Int32) -> String? { procfs.cgroups(ofThread: tid).unifiedPath }

    public func subdirectories(_ path: String) -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
        return names.filter { FileStatusProbe.kind(of: path + "/" + $0) == .directory }.sorted()
    }

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

    public func openControl(_ path: String) throws(Errno) -> any CgroupControlFile {
        try KernelCgroupControlFile(path: path)
    }
}

/// An open cgroupfs control file, closed in deinit. kernfs treats every
/// write(2) as a whole command whatever the file offset, so one descriptor
/// serves every update.
final class KernelCgroupControlFile: CgroupControlFile {
    let descriptor: FileDescriptor

    init(path: String) throws(Errno) {
        do {
            descriptor = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.closeOnExec])
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(Errno) {
        _ = try valueOrErrno { system_write(descriptor.rawValue, bytes) }
    }

    deinit { _ = system_close(descriptor.rawValue) }
}
