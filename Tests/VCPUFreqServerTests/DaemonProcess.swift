import Foundation
import Glibc
import Testing
import VCPUFreqClient
import VCPUFreqTestSupport

/// Root: the daemon changes the scheduling of the test's threads (another
/// process's threads need CAP_SYS_NICE). CI runs as root on this machine.
let isRoot = geteuid() == 0
let needsRoot = "needs root: the daemon changes scheduling attributes of the test process's threads"

/// The package's root directory (this file is Tests/VCPUFreqServerTests/DaemonProcess.swift).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// The `vcpufreq` binary built with these tests: the one beside the
/// running test bundle (any --scratch-path, a sanitizer build), else
/// `<package>/.build/debug/vcpufreq`.
let vcpufreqBinary: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
    let sibling = (exe as NSString).deletingLastPathComponent + "/vcpufreq"
    if FileManager.default.isExecutableFile(atPath: sibling) { return sibling }
    return packageRoot + "/.build/debug/vcpufreq"
}()

/// A fresh directory under /tmp (mode 0755 whatever the umask, so a peer
/// running as uid 65534 can reach a socket in it); the caller removes it.
func makeTemporaryDirectory(_ label: String) -> String {
    let path = "/tmp/vcpufreq-server-test-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    try! FileManager.default.createDirectory(
        atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
    chmod(path, 0o755)
    return path
}

/// Starts `process` with no signal blocked. Foundation spawns from the
/// calling thread and the child inherits its signal mask; the test runner's
/// worker threads block SIGTERM and SIGINT, which would make a child (a
/// `sleep`, strace) deaf to them.
func runWithDefaultSignalMask(_ process: Process) throws {
    var none = sigset_t()
    var saved = sigset_t()
    sigemptyset(&none)
    pthread_sigmask(SIG_SETMASK, &none, &saved)
    defer { pthread_sigmask(SIG_SETMASK, &saved, nil) }
    try process.run()
}

/// Why a daemon could not be used.
struct DaemonError: Error, CustomStringConvertible {
    var description: String
}

/// One `vcpufreq serve` process with its own temporary directory: the
/// socket, the state directory (journal), the topology file, the record
/// file, the metrics file and the daemon's stdout/stderr. Stopped (SIGTERM)
/// and cleaned up in deinit if the test did not stop it.
final class Daemon {
    let directory: String
    let socketPath: String
    let stateDirectory: String
    let topologyPath: String
    let recordPath: String
    let metricsPath: String
    let stdoutPath: String
    let stderrPath: String
    let process: Process
    private let ownsDirectory: Bool

    /// Starts `vcpufreq serve` on `topology` (TOML text) with `--record` and
    /// `--metrics-file` in its directory plus `arguments`, and waits until it
    /// accepts connections. `reusing` runs it in another daemon's directory
    /// (same socket, same state directory: a restart).
    init(
        topology: String, arguments: [String] = [], record: Bool = true, metrics: Bool = true,
        metricsIntervalMilliseconds: Int = 100, reusing previous: Daemon? = nil, label: String = "daemon"
    ) throws {
        directory = previous?.directory ?? makeTemporaryDirectory(label)
        ownsDirectory = previous == nil
        socketPath = directory + "/vcpufreq.sock"
        stateDirectory = directory + "/state"
        topologyPath = directory + "/topology.toml"
        let run = previous == nil ? "" : "-restart-\(UInt32.random(in: 0...UInt32.max))"
        recordPath = directory + "/record\(run).jsonl"
        metricsPath = directory + "/metrics.prom"
        stdoutPath = directory + "/stdout\(run).txt"
        stderrPath = directory + "/stderr\(run).txt"
        try topology.write(toFile: topologyPath, atomically: true, encoding: .utf8)

        var all = [
            "serve", "--topology", topologyPath, "--socket", socketPath, "--state-dir", stateDirectory, "--log-level", "debug",
        ]
        if metrics { all += ["--metrics-file", metricsPath, "--metrics-interval-ms", "\(metricsIntervalMilliseconds)"] }
        if record { all += ["--record", recordPath] }
        all += arguments
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process = Process()
        process.executableURL = URL(fileURLWithPath: vcpufreqBinary)
        process.arguments = all
        process.standardOutput = FileHandle(forWritingAtPath: stdoutPath)
        process.standardError = FileHandle(forWritingAtPath: stderrPath)
        process.standardInput = FileHandle.nullDevice
        try runWithDefaultSignalMask(process)
        try waitUntilReady()
    }

    var pid: Int32 { process.processIdentifier }

    /// Polls until a client can say HELLO to this process (STATUS names its
    /// pid: in a restart, the socket file may still be the old daemon's for
    /// a moment). The daemon recovers its journal before it listens, so
    /// "ready" also means "recovered".
    private func waitUntilReady(timeoutSeconds: Double = 15) throws {
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while Date() < deadline {
            guard process.isRunning else {
                throw DaemonError(description: "vcpufreq serve exited (\(process.terminationStatus)) at start:\n\(log)")
            }
            if FileManager.default.fileExists(atPath: socketPath),
                let probe = try? VCPUFreqClient(socketPath: socketPath, clientName: "readiness probe", timeoutMilliseconds: 2000),
                (try? probe.status().daemon.pid) == pid
            {
                return
            }
            usleep(2000)
        }
        throw DaemonError(description: "vcpufreq serve did not listen within \(timeoutSeconds) s:\n\(log)")
    }

    /// A client connected to this daemon (HELLO done), replies time out after 5 s.
    func client(_ name: String = "server tests") throws -> VCPUFreqClient {
        try VCPUFreqClient(socketPath: socketPath, clientName: name, timeoutMilliseconds: 5000)
    }

    /// The daemon's log so far (stderr).
    var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    /// What it printed on stdout (the record lines of --dry-run).
    var standardOutput: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// The --record file, one action per line.
    func records() -> [RecordLine] { RecordLine.parse(file: recordPath) }

    /// Sends `signal` and waits for the exit; returns the termination
    /// status and whether the process ended by a signal.
    @discardableResult
    func stop(signal: Int32 = SIGTERM, timeoutSeconds: Double = 10) -> (status: Int32, signaled: Bool) {
        if process.isRunning { kill(pid, signal) }
        let deadline = Date().addingTimeInterval(timeoutSeconds)
        while process.isRunning && Date() < deadline { usleep(1000) }
        if process.isRunning {
            kill(pid, SIGKILL)
            process.waitUntilExit()
        }
        process.waitUntilExit()
        return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
    }

    /// The journal's files (one per attached thread).
    func journalEntries() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: stateDirectory + "/threads")) ?? []).sorted()
    }

    /// The BPF pins a daemon records in its state directory while it runs
    /// (`<state>/bpf-pins`: `boot …`, then `<map id> <path>` lines); the
    /// record is gone once a daemon stopped and unpinned them itself.
    func recordedPins() -> [String] {
        let text = (try? String(contentsOfFile: stateDirectory + "/bpf-pins", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").dropFirst().compactMap { line in
            line.split(separator: " ", maxSplits: 1).last.map(String.init)
        }
    }

    /// Stops the daemon the way an operator would (SIGTERM, SIGKILL after
    /// 5 s). The pins of a daemon a test killed stay for the next daemon of
    /// its state directory; when the test started none, they are removed
    /// here with the directory, so bpffs keeps no map per test run.
    deinit {
        if process.isRunning { stop(signal: SIGTERM, timeoutSeconds: 5) }
        if ownsDirectory {
            for pin in recordedPins() {
                unlink(pin)
                rmdir((pin as NSString).deletingLastPathComponent)
            }
            try? FileManager.default.removeItem(atPath: directory)
        }
    }
}

/// One line of the recording actuator (`--record`, `--dry-run` stdout).
struct RecordLine: Decodable, Equatable, CustomStringConvertible {
    var tNs: UInt64
    var action: String
    var tid: Int32
    var vm: String
    var vcpu: Int
    var utilMin: Int
    var utilMax: Int
    var latency: String
    var cpus: String?

    static func parse(file path: String) -> [RecordLine] {
        parse(text: (try? String(contentsOfFile: path, encoding: .utf8)) ?? "")
    }

    /// Every line must be a record: a line that does not decode fails the test.
    static func parse(text: String) -> [RecordLine] {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var lines: [RecordLine] = []
        for line in text.split(separator: "\n") where !line.isEmpty {
            do {
                lines.append(try decoder.decode(RecordLine.self, from: Data(line.utf8)))
            } catch {
                Issue.record("record line does not parse: \(line): \(error)")
            }
        }
        return lines
    }

    var description: String {
        "\(action) tid \(tid) vm \(vm) vcpu \(vcpu) util \(utilMin)...\(utilMax) latency \(latency) cpus \(cpus ?? "-")"
    }
}

/// Polls `condition` every millisecond until it holds or `timeoutSeconds`
/// pass; returns whether it held.
@discardableResult
func eventually(timeoutSeconds: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeoutSeconds)
    repeat {
        if try condition() { return true }
        usleep(1000)
    } while Date() < deadline
    return try condition()
}

/// Runs a program to completion: exit status, stdout, stderr.
func runProgram(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: arguments[0])
    process.arguments = Array(arguments.dropFirst())
    process.standardInput = FileHandle.nullDevice
    let run = try ProgramOutput.of(process, start: runWithDefaultSignalMask)
    return (run.status, run.standardOutput, run.standardError)
}
