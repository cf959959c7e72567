import Foundation
import SystemPackage

/// Durable record of the threads the daemon has changed, so a daemon killed
/// with SIGKILL (no chance to restore) leaves enough behind for the next one
/// to put every thread back.
///
/// One file per attached thread, `<state>/threads/thread-<tid>.json`,
/// written before any attribute changes: temp file, fsync, rename, fsync of
/// the directory — a crash leaves the old record or the new one, never half
/// of one. Restore removes the record. At start, before accepting VMMs, the
/// daemon calls `recover(with:)`: every recorded thread that still exists
/// with the recorded start time gets its attributes back; a TID now used by
/// another thread (different start time) is never touched. Records of
/// restored, gone and reused threads and unreadable files are removed; a
/// record whose restore failed stays for the next start.
public final class RestoreJournal {
    /// The record format; a record of another version is not trusted.
    public static let version = 1

    /// What one file holds.
    public struct Record: Codable, Equatable, Sendable {
        public var version: Int
        public var thread: AttachedThread
    }

    /// What recovery did, thread by thread.
    public struct RecoveryReport: Sendable {
        /// Threads whose original attributes were put back.
        public var restored: [ThreadTarget] = []
        /// Threads that no longer exist: nothing to do.
        public var gone: [ThreadTarget] = []
        /// The TID now names another thread (different start time): left alone.
        public var reused: [ThreadTarget] = []
        /// Restores that failed (the thread keeps what the old daemon set;
        /// its record stays, and the next start tries again).
        public var failed: [ThreadControlError] = []
        /// Files that could not be read as a record (names), removed.
        public var unreadable: [String] = []
    }

    public let stateDirectory: String
    public let directory: String

    /// Creates `<stateDirectory>/threads` (0700) if needed.
    public init(stateDirectory: String = "/run/vcpufreq") throws(Errno) {
        self.stateDirectory = stateDirectory
        directory = stateDirectory + "/threads"
        try Self.makeDirectory(stateDirectory)
        try Self.makeDirectory(directory)
    }

    /// Creates `path` (0700; its parent must exist) unless a directory is
    /// there. The daemon creates its state directory this way before it
    /// locks it (`InstanceLocks`), before the journal is opened.
    public static func makeDirectory(_ path: String) throws(Errno) {
        guard FileStatusProbe.kind(of: path) != .directory else { return }
        do {
            try FileIO.makeDirectory(path, mode: [.ownerReadWriteExecute])
        } catch .fileExists {
            return
        }
    }

    func path(forThread tid: Int32) -> String { directory + "/thread-\(tid).json" }

    /// Durably records `thread` (replacing an older record of its TID).
    public func record(_ thread: AttachedThread) throws(Errno) {
        let data: Data
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            data = try encoder.encode(Record(version: Self.version, thread: thread))
        } catch {
            throw Errno.invalidArgument
        }
        let final = path(forThread: thread.target.tid)
        let temporary = directory + "/.thread-\(thread.target.tid).json.tmp"
        do {
            try writeSynced(Array(data), to: temporary)
        } catch {
            _ = temporary.withCString { system_unlink($0) }
            throw error
        }
        let renamed = temporary.withCString { from in final.withCString { to in syscallResult { system_rename(from, to) } } }
        if case .failure(let error) = renamed {
            _ = temporary.withCString { system_unlink($0) }
            throw error
        }
        try syncDirectory()
    }

    /// Removes the thread's record (after its attributes were restored).
    /// A missing record is fine; the removal is synced so a crash right
    /// after cannot resurrect it.
    public func remove(_ thread: AttachedThread) {
        _ = path(forThread: thread.target.tid).withCString { system_unlink($0) }
        try? syncDirectory()
    }

    /// The records on disk, and the names of files that are not records.
    public func records() -> (records: [Record], unreadable: [String]) {
        var records: [Record] = []
        var unreadable: [String] = []
        for name in entries() {
            if name.hasPrefix(".") && name.hasSuffix(".tmp") {
                unreadable.append(name)  // a write the crash interrupted
                continue
            }
            guard let bytes = try? FileIO.read(directory + "/" + name, limit: 1 << 20),
                let record = try? JSONDecoder().decode(Record.self, from: Data(bytes)),
                record.version == Self.version, name == "thread-\(record.thread.target.tid).json"
            else {
                unreadable.append(name)
                continue
            }
            records.append(record)
        }
        return (records.sorted { $0.thread.target.tid < $1.thread.target.tid }, unreadable)
    }

    /// Restores every recorded thread that is still the same thread and
    /// removes its record; removes the records of gone and reused threads and
    /// every unreadable file. A failed restore keeps its record. Call before
    /// accepting connections.
    public func recover(with controller: ThreadController, procfs: ProcFS = ProcFS()) -> RecoveryReport {
        var report = RecoveryReport()
        let (records, unreadable) = records()
        report.unreadable = unreadable
        for record in records {
            let thread = record.thread
            let target = thread.target
            guard procfs.isThread(target.tid, ofProcess: target.pid),
                let startTime = procfs.startTime(ofThread: target.tid, inProcess: target.pid)
            else {
                report.gone.append(target)
                remove(thread)
                continue
            }
            guard startTime == thread.startTime else {
                report.reused.append(target)
                remove(thread)
                continue
            }
            do {
                try controller.restore(thread)  // removes the record when it succeeds
                report.restored.append(target)
            } catch {
                if error.threadGone {
                    report.gone.append(target)
                    remove(thread)
                } else {
                    report.failed.append(error)
                }
            }
        }
        for name in unreadable { _ = (directory + "/" + name).withCString { system_unlink($0) } }
        if !unreadable.isEmpty { try? syncDirectory() }
        return report
    }

    private func entries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    private func writeSynced(_ bytes: [UInt8], to path: String) throws(Errno) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(
                FilePath(path), .writeOnly, options: [.create, .truncate, .closeOnExec], permissions: [.ownerReadWrite])
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
        defer { _ = system_close(fd.rawValue) }
        do {
            _ = try fd.writeAll(bytes)
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
        _ = try valueOrErrno { system_fsync(fd.rawValue) }
    }

    private func syncDirectory() throws(Errno) {
        let fd: FileDescriptor
        do {
            fd = try FileDescriptor.open(FilePath(directory), .readOnly, options: [.directory, .closeOnExec])
        } catch let error as Errno {
            throw error
        } catch {
            throw Errno.ioError
        }
        defer { _ = system_close(fd.rawValue) }
        _ = try valueOrErrno { system_fsync(fd.rawValue) }
    }
}
