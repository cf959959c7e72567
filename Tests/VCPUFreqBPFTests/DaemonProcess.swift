import Foundation
import Testing
import VCPUFreqClient

/// A real `vcpufreq serve` process for one test, in its own directory
/// (socket, state, log), stopped with SIGTERM at the end.
final class DaemonProcess {
    /// A topology for this machine's 2 CPUs with a VM of 2 vCPUs, each its
    /// own performance domain (a domain's vCPUs share the highest request),
    /// whose every request is applied at once (no dead band, no rate
    /// limit), so a test knows which hint follows which request.
    static let topology = """
        [host]
        name = "test"
        governor = "none"

        [[host.cluster]]
        name = "cpu"
        cpus = "0-1"
        capacity = 1024
        frequencies_khz = [500000, 1000000, 1500000, 2000000]
        nominal = true

        [[vm]]
        name = "vm"
        vcpus = 2
        clusters = ["cpu", "cpu"]
        domains = [0, 1]
        pin = false

        [vm.policy]
        hysteresis = 0
        min_interval_us = 0

        """

    let directory: String
    let socketPath: String
    let logPath: String
    private let process = Process()
    private var stopped = false

    /// The vcpufreq executable SwiftPM built next to the test bundle.
    static var executable: String { Support.buildDirectory + "/vcpufreq" }

    /// Starts `vcpufreq serve` with `arguments` after the usual ones;
    /// `prefix` runs it through another program (setpriv). Waits until a
    /// client can say HELLO: the socket file appears at bind(), a moment
    /// before listen(), and a connect in between is refused (seen on a
    /// loaded machine).
    init(
        _ name: String, arguments: [String], prefix: [String] = [], topology: String = DaemonProcess.topology,
        sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        directory = NSTemporaryDirectory() + "vcpufreq-daemon-\(getpid())-\(name)"
        try? FileManager.default.removeItem(atPath: directory)
        // World-writable: the unprivileged daemon writes its socket and journal here.
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o777])
        chmod(directory, 0o777)
        socketPath = directory + "/socket"
        logPath = directory + "/daemon.log"
        let topologyPath = directory + "/topology.toml"
        try topology.write(toFile: topologyPath, atomically: true, encoding: .utf8)
        chmod(topologyPath, 0o644)
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let command = prefix + [
            Self.executable, "serve", "--topology", topologyPath, "--socket", socketPath, "--state-dir",
            directory + "/state",
        ] + arguments  // a later --state-dir in `arguments` wins
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.standardOutput = log
        process.standardError = log
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while !FileManager.default.fileExists(atPath: socketPath)
            || (try? VCPUFreqClient(socketPath: socketPath, clientName: "readiness probe", timeoutMilliseconds: 2000)) == nil
        {
            guard process.isRunning, Date() < deadline else {
                Issue.record("the daemon did not start: \(self.log)", sourceLocation: sourceLocation)
                throw CancellationError()
            }
            usleep(20_000)
        }
    }

    deinit { stop() }

    var pid: Int32 { process.processIdentifier }

    /// The daemon's log so far (its standard error and output).
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    func connect(_ name: String = "bpf test") throws -> VCPUFreqClient {
        try VCPUFreqClient(socketPath: socketPath, clientName: name)
    }

    /// SIGTERM, then waits for it to restore every thread and exit (the
    /// programs' detach takes a moment; SIGKILL after 20 s); returns its log.
    @discardableResult
    func stop() -> String {
        guard !stopped else { return "" }
        stopped = true
        if process.isRunning {
            process.terminate()
            let deadline = Date().addingTimeInterval(20)
            while process.isRunning && Date() < deadline { usleep(20_000) }
            if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let text = log
        try? FileManager.default.removeItem(atPath: directory)
        return text
    }

    /// SIGKILL: the daemon leaves its hints and its restore journal (in
    /// `stateDirectory`) behind; the directory stays until `stop()`.
    func kill() {
        guard process.isRunning else { return }
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// The restore journal's directory.
    var stateDirectory: String { directory + "/state" }

    /// Runs the vcpufreq executable with `arguments`; exit status and output.
    static func runTool(_ arguments: [String]) throws -> (status: Int32, output: String, error: String) {
        try Support.run([executable] + arguments)
    }
}
