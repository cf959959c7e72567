import Foundation
import VCPUFreqClient
import VCPUFreqLinux
import VCPUFreqProtocol

/// A `vcpufreq serve` the lab started: its real actuators, its own socket,
/// and a state directory a later daemon can reuse (journal recovery).
/// Stopped by PID only.
public final class LabDaemon {
    public let socketPath: String
    public let stateDirectory: String
    public let logPath: String
    let process: ChildProcess
    public var pid: Int32 { process.pid }

    /// A daemon needs BPF loading and capability detection before it
    /// listens: about 2 s in a TCG guest, more on a loaded host.
    static let startTimeoutSeconds = 60.0

    init(executable: String, arguments: [String], socketPath: String, stateDirectory: String, logPath: String) throws {
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
        self.logPath = logPath
        try? FileManager.default.removeItem(atPath: socketPath)
        do {
            process = try ChildProcess(
                [executable, "serve", "--socket", socketPath, "--state-dir", stateDirectory, "--log-level", "info"] + arguments,
                outputPath: logPath)
        } catch {
            throw LabError("cannot start \(executable): \(error)")
        }
        let started = Date()
        let deadline = started.addingTimeInterval(Self.startTimeoutSeconds)
        while Date() < deadline {
            if let ended = process.termination { throw LabError("the daemon exited at start (\(ended)): \(logTail())") }
            if let connection = try? SeqPacketConnection.connect(to: socketPath) {
                try? connection.descriptor.close()
                // On the console (scripts/test-kernels shows these lines): where a guest's time goes.
                FileHandle.standardError.write(Data(("kernel-lab: daemon \(arguments.dropFirst(4).joined(separator: " ")) "
                    + "listening after \(String(format: "%.1f", Date().timeIntervalSince(started))) s\n").utf8))
                return
            }
            usleep(10_000)
        }
        _ = process.stop(grace: .seconds(5))
        throw LabError("the daemon did not listen within \(Int(Self.startTimeoutSeconds)) s: \(logTail())")
    }

    /// STATUS over a connection of its own.
    public func status() throws -> StatusDocument {
        do {
            return try VCPUFreqClient(socketPath: socketPath, clientName: "kernel-lab-status").status()
        } catch {
            throw LabError("STATUS failed: \(error)")
        }
    }

    /// Sends `signal` and waits for the exit (SIGKILL after `grace`).
    @discardableResult
    public func stop(signal: Int32 = SIGTERM, grace: Duration = .seconds(20)) -> ChildProcess.Termination? {
        process.stop(grace: grace, signal: signal)
    }

    public var log: String { readText(logPath) ?? "" }

    public func logTail(lines: Int = 6) -> String {
        log.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }

    /// Warnings and errors the daemon logged (a check fails on unexpected ones).
    public var problems: [String] {
        log.split(separator: "\n").filter { $0.contains(" warning ") || $0.contains(" error ") || $0.contains(" critical ") }
            .map(String.init)
    }

    deinit { _ = process.stop(grace: .seconds(10)) }
}

/// A lab failure, described for the report.
public struct LabError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
