import Foundation
import VCPUFreqBenchSupport
import VCPUFreqCore
import VCPUFreqLinux

/// The real daemon as a child process: `vcpufreq serve` of the same binary
/// on a private socket and state directory, optionally with the allocation
/// counter preloaded. Stopped by PID (SIGTERM, then SIGKILL) — never by name.
final class DaemonProcess {
    /// posix_spawn + waitpid (ChildProcess), not Foundation's `Process`:
    /// with the loopback interface down its termination monitoring never
    /// sees the child exit, and the benchmark hung at its end.
    let process: ChildProcess
    let socketPath: String
    let logPath: String
    var pid: Int32 { process.pid }

    /// How long the daemon may take to start listening by default (capability
    /// detection probes a scratch thread; the journal is on tmpfs).
    static let startTimeoutSeconds = 20.0
    let startTimeoutSeconds: Double
    static let stopTimeoutSeconds = 10.0

    /// Starts `executable serve ...` and waits until the socket accepts.
    init(
        executable: String, topologyPath: String, socketPath: String, stateDirectory: String, logPath: String,
        preload: (library: String, counterFile: String)?, extraArguments: [String] = [],
        startTimeoutSeconds: Double = DaemonProcess.startTimeoutSeconds
    ) throws {
        self.startTimeoutSeconds = startTimeoutSeconds
        self.socketPath = socketPath
        self.logPath = logPath
        let arguments = [
            executable, "serve", "--topology", topologyPath, "--socket", socketPath, "--state-dir", stateDirectory,
            // The bench measures the request path; pinning would only move the idle threads around.
            "--no-pin", "--log-level", "notice",
        ] + extraArguments
        var environment = ProcessInfo.processInfo.environment
        if let preload {
            environment["LD_PRELOAD"] = preload.library
            environment[MallocCounterFile.environmentVariable] = preload.counterFile
        } else {
            environment.removeValue(forKey: "LD_PRELOAD")
        }
        do {
            process = try ChildProcess(arguments, environment: environment, outputPath: logPath)
        } catch {
            throw BenchError("cannot start \(executable): \(error)")
        }
        try waitUntilListening()
    }

    private func waitUntilListening() throws {
        let deadline = Date().addingTimeInterval(startTimeoutSeconds)
        while Date() < deadline {
            if let ended = process.termination {
                throw BenchError("the daemon exited at start (\(ended)): \(logTail())")
            }
            if let connection = try? SeqPacketConnection.connect(to: socketPath) {
                try? connection.descriptor.close()
                return
            }
            usleep(10_000)
        }
        stop()
        throw BenchError("the daemon did not listen on \(socketPath) within \(Int(startTimeoutSeconds)) s: \(logTail(lines: 40))")
    }

    /// SIGTERM (the daemon restores every thread and exits), SIGKILL if it
    /// does not exit in time. Returns the exit status (nil: killed).
    @discardableResult
    func stop() -> Int32? {
        switch process.stop(grace: .seconds(Self.stopTimeoutSeconds)) {
        case .exited(let code): return code
        case .signaled, nil: return nil
        }
    }

    /// SIGKILL, as a crash would: nothing restored, the journal left behind.
    func killWithoutWarning() {
        guard process.isRunning else { return }
        process.send(SIGKILL)
        _ = process.wait()
    }

    /// Pins the daemon's event-loop thread (its main thread, TID = PID);
    /// nil lets it run anywhere again.
    func setAffinity(_ cpus: CPUList) throws {
        do { try ThreadScheduling.setAffinity(cpus, of: pid) } catch {
            throw BenchError("cannot set the daemon's affinity to \(cpus): \(error)")
        }
    }

    /// CPU time and wake-ups of the daemon's event-loop thread so far.
    func usage() -> ThreadUsage? { ThreadUsage.read(tid: pid, processID: pid) }

    /// The last lines the daemon logged (for error messages).
    func logTail(lines: Int = 8) -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log)" }
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }

    /// Why the daemon died, from its log: the Swift runtime's fatal-error
    /// and crash lines (the backtrace after them is long), else the tail.
    func deathNotice() -> String {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return "(no log)" }
        let markers = ["Fatal", "fatal error", "Simultaneous accesses", "Program crashed", "Precondition failed", "crashed:"]
        let lines = text.split(separator: "\n").filter { line in markers.contains { line.contains($0) } }
        return lines.isEmpty ? logTail(lines: 12) : lines.prefix(6).joined(separator: "\n")
    }

    /// Log lines at warning level or above (the request path logs nothing
    /// else; anything here deserves a line in the report).
    func warnings() -> [String] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").filter { line in
            line.contains(" warning ") || line.contains(" error ") || line.contains(" critical ")
        }.map(String.init)
    }

    deinit { stop() }
}

/// One thread's CPU time and context switches, from procfs.
struct ThreadUsage: Equatable {
    /// Time on a CPU, ns (schedstat field 1).
    var cpuNanoseconds: UInt64
    /// Times the thread blocked (epoll_wait sleeps for the daemon).
    var voluntarySwitches: UInt64
    var involuntarySwitches: UInt64

    /// Reads /proc/<pid>/task/<tid>/{schedstat,status}; nil if the thread is gone.
    static func read(tid: Int32, processID: Int32) -> ThreadUsage? {
        let directory = "/proc/\(processID)/task/\(tid)"
        guard let schedstat = ProcText.read(directory + "/schedstat"),
            let status = ProcText.read(directory + "/status"),
            let first = schedstat.split(separator: " ").first, let cpu = UInt64(first.trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        return ThreadUsage(
            cpuNanoseconds: cpu, voluntarySwitches: field("voluntary_ctxt_switches:", in: status),
            involuntarySwitches: field("nonvoluntary_ctxt_switches:", in: status))
    }

    /// The calling thread's usage.
    static func current() -> ThreadUsage? {
        read(tid: ThreadScheduling.currentThreadID(), processID: getpid())
    }

    static func field(_ name: String, in status: String) -> UInt64 {
        for line in status.split(separator: "\n") where line.hasPrefix(name) {
            return UInt64(line.dropFirst(name.count).trimmingCharacters(in: .whitespaces)) ?? 0
        }
        return 0
    }

    func since(_ earlier: ThreadUsage) -> ThreadUsage {
        ThreadUsage(
            cpuNanoseconds: cpuNanoseconds &- earlier.cpuNanoseconds,
            voluntarySwitches: voluntarySwitches &- earlier.voluntarySwitches,
            involuntarySwitches: involuntarySwitches &- earlier.involuntarySwitches)
    }
}

/// A benchmark failure, described for the operator.
public struct BenchError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
