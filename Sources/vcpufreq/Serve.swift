import ArgumentParser
import Glibc
import Logging
import VCPUFreqConfig
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqServer

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the daemon a VMM connects to (protocol v1, docs/protocol.md).",
        discussion: """
            Listens on a SOCK_SEQPACKET Unix socket, serves every attached VM's guest ABIs, turns guest requests into \
            host hints on the vCPU threads and restores the threads on detach, disconnect, error and SIGTERM/SIGINT.
            """
    )

    @Option(help: "The topology file (TOML).")
    var topology: String

    @Option(help: "Path of the listening socket.")
    var socket: String

    @Flag(help: "Capture and record every action (JSON lines on stdout, or --record), never change a thread.")
    var dryRun = false

    @Option(help: "Also record every actuator action as JSON lines to this file.")
    var record: String?

    @Option(name: .customLong("metrics-file"), help: "Write Prometheus metrics to this file (atomically).")
    var metricsFile: String?

    @Option(name: .customLong("metrics-interval-ms"), help: "How often to rewrite the metrics file.")
    var metricsIntervalMilliseconds = 1000

    @Option(name: .customLong("state-dir"), help: "Directory of the restore journal (survives a killed daemon); one daemon per directory.")
    var stateDirectory = "/run/vcpufreq"

    @Option(name: .customLong("socket-group"), help: "Group allowed to connect (socket mode 0660), by name or gid.")
    var socketGroup: String?

    @Option(name: .customLong("allow-uid"), help: "Also accept VMMs running as this uid (repeatable).")
    var allowUIDs: [UInt32] = []

    @Option(help: "Clamp mechanisms in preference order: uclamp,cgroup,bpf-map,none.")
    var clamp = "uclamp,cgroup,bpf-map,none"

    @Option(help: "Latency mechanisms in preference order: slice,nice,none.")
    var latency = "slice,nice,none"

    @Flag(name: .customLong("no-pin"), help: "Do not pin vCPU threads to their clusters' CPUs.")
    var noPin = false

    @Option(name: .customLong("frequency-refresh-ms"), help: "How often to re-read scaling_cur_freq (hosts with cpufreq).")
    var frequencyRefreshMilliseconds = 20

    @Option(name: .customLong("sysfs-root"), help: "Where sysfs is (scaling_cur_freq is read below it; tests use a fixture).")
    var sysfsRoot = "/sys"

    @Option(name: .customLong("max-vcpus"), help: "vCPUs the daemon serves in all (1...1024).")
    var maximumVCPUs = 1024

    @Option(name: .customLong("max-vms"), help: "VMs the daemon serves at once.")
    var maximumVMs = 64

    @Option(name: .customLong("max-connections"), help: "Open connections at once (VMMs and status clients).")
    var maximumConnections = 256

    @Option(name: .customLong("busy-poll-us"), help: "After a request, keep polling this long (µs) before sleeping: lower kick latency on hosts whose idle CPUs wake slowly, at the cost of CPU. 0 = off.")
    var busyPollMicroseconds = 0

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"

    @OptionGroup(title: "BPF") var bpf: ServeBPFOptions

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: \"\(logLevel)\" is not one of trace, debug, info, notice, warning, error, critical")
        }
        _ = try clampPreference()
        _ = try latencyPreference()
        guard metricsIntervalMilliseconds > 0 else { throw ValidationError("--metrics-interval-ms must be positive") }
        guard frequencyRefreshMilliseconds > 0 else { throw ValidationError("--frequency-refresh-ms must be positive") }
        guard (1...1024).contains(maximumVCPUs) else { throw ValidationError("--max-vcpus must be in 1...1024") }
        guard maximumVMs > 0 else { throw ValidationError("--max-vms must be positive") }
        guard maximumConnections > 0 else { throw ValidationError("--max-connections must be positive") }
        guard (0...1_000_000).contains(busyPollMicroseconds) else { throw ValidationError("--busy-poll-us must be 0...1000000") }
        if let socketGroup { _ = try Self.groupID(socketGroup) }
    }

    func clampPreference() throws -> [ClampMechanism] {
        try clamp.split(separator: ",").map {
            guard let value = ClampMechanism(rawValue: String($0)) else {
                throw ValidationError("--clamp: \"\($0)\" is not one of uclamp, cgroup, bpf-map, none")
            }
            return value
        }
    }

    func latencyPreference() throws -> [LatencyMechanism] {
        try latency.split(separator: ",").map {
            guard let value = LatencyMechanism(rawValue: String($0)) else {
                throw ValidationError("--latency: \"\($0)\" is not one of slice, nice, none")
            }
            return value
        }
    }

    /// Each vCPU costs the daemon a doorbell eventfd, and a typical soft
    /// RLIMIT_NOFILE is 1024: raise it to the hard limit, which the
    /// daemon's vCPU and connection budgets stay well below.
    static func raiseDescriptorLimit(logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
        let wanted = limit.rlim_max
        limit.rlim_cur = wanted
        if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
            logger.warning("cannot raise the open file limit", metadata: ["errno": "\(errno)"])
        }
    }

    static func groupID(_ name: String) throws -> UInt32 {
        if let gid = UInt32(name) { return gid }
        guard let entry = getgrnam(name) else { throw ValidationError("--socket-group: no group named \"\(name)\"") }
        return entry.pointee.gr_gid
    }

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let loaded = try TopologyFileOptions(file: topology, vm: nil).load()
        var configuration = ServerConfiguration(
            topology: loaded, socketPath: socket, socketGroupID: try socketGroup.map(Self.groupID),
            allowedUIDs: Set(allowUIDs), dryRun: dryRun, recordPath: record, metricsPath: metricsFile,
            metricsIntervalMilliseconds: metricsIntervalMilliseconds, stateDirectory: stateDirectory,
            frequencyRefreshMilliseconds: frequencyRefreshMilliseconds, sysfsRoot: sysfsRoot,
            clampPreference: try clampPreference(),
            latencyPreference: try latencyPreference(), pinThreads: !noPin, maximumVCPUs: maximumVCPUs,
            maximumVMs: maximumVMs, maximumConnections: maximumConnections)
        configuration.bpf = bpf.settings
        configuration.busyPollMicroseconds = busyPollMicroseconds
        let logger = Logger(label: "vcpufreq")
        Self.raiseDescriptorLimit(logger: logger)
        // A reader of the --dry-run record that goes away (`| head`) must
        // cost a failed write, not the daemon (sockets use MSG_NOSIGNAL).
        signal(SIGPIPE, SIG_IGN)
        do {
            let server = try Server(configuration: configuration, logger: logger)
            try server.run()
        } catch let error as ServerError {
            throw CLIError(error.description)
        } catch let error as TopologyError {
            throw CLIError("\(topology): \(error)")
        }
    }
}
