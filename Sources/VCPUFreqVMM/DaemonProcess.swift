import Glibc
import SystemPackage
import VCPUFreqLinux

/// A `vcpufreq serve` child process with its own private directory (socket,
/// restore journal, action record, log), for tests and for `vcpufreq vmm
/// --topology FILE`. Started with posix_spawn, ready once its socket accepts
/// a connection, stopped by its PID (SIGTERM, then SIGKILL after a grace
/// period) and never by name. The directory is removed when the object goes.
public final class DaemonProcess: @unchecked Sendable {
    private let child: ChildProcess
    public var pid: pid_t { child.pid }
    /// The private directory: `daemon.sock`, `state/`, `record.jsonl`, `daemon.log`.
    public let directory: String
    public let socketPath: String
    public let stateDirectory: String
    /// The JSON-lines action record (`serve --record`), when asked for.
    public let recordPath: String?
    /// The daemon's stdout and stderr.
    public let logPath: String

    /// Starts `executable serve --topology topology --socket … --state-dir …
    /// [--record …] arguments…` and waits until it accepts connections.
    /// - Throws: `VMMError.daemonProcess` with the daemon's log when it
    ///   exits or does not listen within `startTimeout`.
    public init(
        executable: String, topology: String, record: Bool = false, arguments: [String] = [],
        startTimeout: Duration = .seconds(15)
    ) throws(VMMError) {
        var template = Array("/tmp/vcpufreq-vmm.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else {
            throw .daemonProcess("cannot create a temporary directory: errno \(errno)")
        }
        directory = String(cString: made)
        socketPath = directory + "/daemon.sock"
        stateDirectory = directory + "/state"
        recordPath = record ? directory + "/record.jsonl" : nil
        logPath = directory + "/daemon.log"
        var argv = [executable, "serve", "--topology", topology, "--socket", socketPath, "--state-dir", stateDirectory]
        if let recordPath { argv += ["--record", recordPath] }
        argv += arguments
        do {
            child = try ChildProcess(argv, outputPath: logPath)
        } catch {
            Self.removeTree(directory)
            throw .daemonProcess("cannot start \(executable): \(error)")
        }
        do {
            try waitUntilListening(timeout: startTimeout)
        } catch {
            _ = stop()
            Self.removeTree(directory)
            throw error
        }
    }

    deinit {
        _ = stop()
        Self.removeTree(directory)
    }

    /// The daemon's output so far.
    public var log: String { Self.readFile(logPath) ?? "" }

    /// Lines of the action record so far (empty without `record`).
    public var recordLines: [Substring] {
        guard let recordPath, let text = Self.readFile(recordPath) else { return [] }
        return text.split(separator: "\n")
    }

    /// True while the child has not exited (reaps it when it has).
    public var isRunning: Bool { child.isRunning }

    /// How the daemon ended; nil while it runs.
    public var termination: ChildProcess.Termination? { child.termination }

    /// SIGTERM to the daemon's PID (it restores every thread and exits),
    /// SIGKILL to the same PID after `grace`. Returns how it ended, nil if
    /// it could not be collected. Idempotent.
    @discardableResult
    public func stop(grace: Duration = .seconds(5)) -> ChildProcess.Termination? { child.stop(grace: grace) }

    /// True when the daemon exited normally with status 0.
    public var exitedCleanly: Bool { child.termination == .exited(0) }

    private func waitUntilListening(timeout: Duration) throws(VMMError) {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let ended = child.termination {
                throw .daemonProcess("`vcpufreq serve` exited at start (\(ended)):\n\(log)")
            }
            if let connection = try? SeqPacketConnection.connect(to: socketPath) {
                try? connection.descriptor.close()
                return
            }
            guard ContinuousClock.now < deadline else {
                throw .daemonProcess("`vcpufreq serve` does not listen on \(socketPath) after \(timeout):\n\(log)")
            }
            usleep(5_000)
        }
    }

    static func readFile(_ path: String) -> String? {
        guard let file = try? FileDescriptor.open(FilePath(path), .readOnly, options: [.closeOnExec]) else { return nil }
        defer { try? file.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            guard let count = try? chunk.withUnsafeMutableBytes({ try file.read(into: $0) }), count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Removes a directory tree this object created (no symlinks followed).
    static func removeTree(_ path: String) {
        if let directory = opendir(path) {
            while let entry = readdir(directory) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                    String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
                }
                if name == "." || name == ".." { continue }
                let child = path + "/" + name
                var status = stat()
                guard lstat(child, &status) == 0 else { continue }
                if status.st_mode & S_IFMT == S_IFDIR { removeTree(child) } else { unlink(child) }
            }
            closedir(directory)
        }
        rmdir(path)
    }
}
