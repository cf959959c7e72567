import Foundation
import Glibc
import VCPUFreqBenchSupport
import VCPUFreqClient
import VCPUFreqVMM

/// `vcpufreq bench workload --command CMD --score-regex RE`: an external
/// benchmark (a real PCMark through adb in an Android VM, a shell workload)
/// run once per configuration per round, interleaved like the guest tests,
/// each configuration a set of daemon settings (`CommandConfiguration`),
/// scored by its own output, reported in the same table.
///
/// Per run: the configuration's daemon is started on a private socket (the
/// generated topology, or `topology`), then `sh -c CMD` runs with
/// `VCPUFREQ_SOCKET` (the socket; unset with `daemon=off`),
/// `VCPUFREQ_PROFILE` (the profile to attach with, generated topology
/// only), `VCPUFREQ_CONFIGURATION`, `VCPUFREQ_ROUND` and `VCPUFREQ_VCPUS`
/// in its environment — its VMM attaches to that daemon — and the daemon
/// is stopped after it. CPU time: the command's processes (reaped children)
/// and the daemon's threads.
public struct CommandBench {
    public static let defaultConfigurations = ["baseline:daemon=off", "vcpufreq"]

    public var command: String
    public let extractor: ScoreExtractor
    public var configurations: [CommandConfiguration]
    public var daemonExecutable: String
    public var progress: ProgressReporter
    public var rounds = 5
    public var contention: Contention = .none
    public var testName = "command"
    /// The daemon's topology; nil: `WorkloadTopology` with `vcpus` vCPUs.
    public var topology: String?
    public var vcpus = 2
    public var seed: UInt64 = 0x00C0_FFEE_5EED
    public var timeout: Duration = .seconds(3600)
    public var daemonArguments: [String] = []

    /// - Throws: `.usage` for a bad expression or configuration.
    public init(
        command: String, scoreRegex: String, configurations: [String], daemonExecutable: String,
        progress: ProgressReporter = .silent
    ) throws(WorkloadBenchError) {
        self.command = command
        extractor = try ScoreExtractor(pattern: scoreRegex)
        var parsed: [CommandConfiguration] = []
        for text in configurations {
            let configuration = try CommandConfiguration.parse(text)
            guard !parsed.contains(where: { $0.name == configuration.name }) else {
                throw .usage("--configurations: \"\(configuration.name)\" is named twice")
            }
            parsed.append(configuration)
        }
        guard parsed.count >= 1 else { throw .usage("--configurations: no configuration named") }
        self.configurations = parsed
        self.daemonExecutable = daemonExecutable
        self.progress = progress
    }

    public func run() throws(WorkloadBenchError) -> WorkloadResults {
        if topology != nil, let configuration = configurations.first(where: { $0.kickMode != nil }) {
            throw .usage("--configurations \(configuration.name): kick= sets the generated topology's kick_mode; "
                + "with --topology, set kick_mode in that file")
        }
        guard rounds >= 1 else { throw .usage("--rounds must be at least 1") }
        let machine = MachineDescription.current()
        let uptimeBefore = WorkloadBench.uptimeLine()
        let startedAt = Date()
        var template = Array("/tmp/vcpufreq-workload-cmd.XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw .output("cannot create a temporary directory (errno \(errno))") }
        let directory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: directory) }

        let hogs: CPUHogs?
        do {
            hogs = contention.hogsPerCPU > 0
                ? try CPUHogs(cpus: Array(0..<machine.onlineCPUs), perCPU: contention.hogsPerCPU, name: "wl-hog") : nil
        } catch {
            throw .measurement("\(error)")
        }
        defer { hogs?.stop() }

        let total = rounds * configurations.count
        progress.plan(steps: total)
        var runs: [RunRecord] = []
        var actuators: [String: String] = [:]
        let loopStart = ContinuousClock.now
        for round in 0..<rounds {
            for offset in 0..<configurations.count {
                let configuration = configurations[(offset + round) % configurations.count]
                let done = runs.count
                let eta = done > 0 ? Timing.seconds(ContinuousClock.now - loopStart) / Double(done) * Double(total - done) : nil
                progress.begin("round \(round + 1)/\(rounds) · \(testName) · \(configuration.name)"
                    + (eta.map { " · ETA \(WorkloadBench.duration($0))" } ?? ""))
                let (record, actuator) = runOnce(configuration, round: round, directory: directory)
                if let actuator { actuators[configuration.name] = actuator }
                if let failure = record.failure { progress.note("\(configuration.name), round \(round + 1): \(failure)") }
                runs.append(record)
            }
        }
        progress.finish()
        hogs?.stop()

        let names = configurations.map(\.name)
        let samples: [[[Analysis.Sample?]]] = names.map { name in
            [(0..<rounds).map { round in
                guard let run = runs.first(where: { $0.configuration == name && $0.round == round }), let raw = run.raw else {
                    return nil
                }
                return Analysis.Sample(raw: raw, cpuSeconds: run.cost.cpuSeconds)
            }]
        }
        let rows = Analysis.rows(samples: samples, configurations: names, tests: [testName], scaled: false, weightedTotal: false)
        let infos = configurations.map { configuration in
            WorkloadResults.ConfigurationInfo(
                name: configuration.name, summary: configuration.summary,
                ran: runs.contains { $0.configuration == configuration.name && $0.raw != nil },
                note: runs.contains { $0.configuration == configuration.name && $0.raw != nil }
                    ? nil : "every run failed", actuators: actuators[configuration.name] ?? (configuration.daemon ? nil : "none"))
        }
        let energy = EnergyMeter().read()
        let residency = FrequencyResidency().read()
        return WorkloadResults(
            mode: .command, date: ISO8601DateFormatter().string(from: startedAt), uptimeBefore: uptimeBefore,
            uptimeAfter: WorkloadBench.uptimeLine(), machine: machine,
            settings: .init(
                quick: false, rounds: rounds, contention: contention, vcpus: vcpus, seed: seed,
                tableKHz: topology == nil ? WorkloadTopology.tableKHz : [], daemonArguments: daemonArguments,
                command: command, scoreRegex: extractor.pattern),
            contention: contention.description(cpuCount: machine.onlineCPUs), calibration: nil, configurations: infos,
            tests: rows,
            summaries: names.map { ConfigurationSummary.of($0, runs: runs, vcpus: vcpus, startDelays: []) },
            host: .init(
                energy: energy.map { "RAPL zones " + $0.microjoules.keys.sorted().joined(separator: ", ") }
                    ?? "not on this host (no RAPL zone under /sys/class/powercap)",
                frequencyResidency: residency.map { "cpufreq stats of \($0.count) CPUs" }
                    ?? "not on this host (no cpufreq stats)",
                schedExt: SchedExt.hostUnavailableReason() ?? "sched_ext in the kernel"),
            runs: runs, notes: [])
    }

    /// One run of the command under `configuration`; also the daemon's actuators, when it had one.
    func runOnce(_ configuration: CommandConfiguration, round: Int, directory: String) -> (RunRecord, String?) {
        var record = RunRecord(configuration: configuration.name, test: testName, round: round, raw: nil, cost: RunCost())
        var environment = ProcessInfo.processInfo.environment
        environment["VCPUFREQ_CONFIGURATION"] = configuration.name
        environment["VCPUFREQ_ROUND"] = String(round)
        environment["VCPUFREQ_VCPUS"] = String(vcpus)
        environment.removeValue(forKey: "VCPUFREQ_SOCKET")
        environment.removeValue(forKey: "VCPUFREQ_PROFILE")
        var daemon: DaemonProcess?
        var actuators: String?
        defer { _ = daemon?.stop() }
        if configuration.daemon {
            let topologyPath: String
            if let topology {
                topologyPath = topology
            } else {
                topologyPath = directory + "/\(configuration.name).toml"
                let text = WorkloadTopology.text(
                    cpuCount: MachineDescription.current().onlineCPUs, vcpus: vcpus, kickMode: configuration.kickMode,
                    writer: "`vcpufreq bench workload --command`")
                do { try text.write(toFile: topologyPath, atomically: true, encoding: .utf8) } catch {
                    record.failure = "cannot write \(topologyPath): \(error)"
                    return (record, nil)
                }
                environment["VCPUFREQ_PROFILE"] = WorkloadTopology.sharedPageProfile
            }
            do {
                daemon = try DaemonProcess(
                    executable: daemonExecutable, topology: topologyPath,
                    arguments: ["--log-level", "warning"] + daemonArguments + configuration.serveArguments)
            } catch {
                record.failure = "the daemon did not start: \(error)"
                return (record, nil)
            }
            environment["VCPUFREQ_SOCKET"] = daemon?.socketPath
            if let daemon, let client = try? VCPUFreqClient(socketPath: daemon.socketPath, clientName: "vcpufreq bench workload"),
                let status = try? ConnectedVM.status(of: client, allVMs: false)
            {
                actuators = "daemon: \(status.daemon.actuators)"
            }
        }
        let output = directory + "/output.txt"
        let daemonBefore = daemon.map { ProcessAccounting.processThreadTime(pid: $0.pid) }
        let childrenBefore = Self.childrenCPUSeconds()
        let energyBefore = EnergyMeter().read()
        let started = ContinuousClock.now
        let status = Self.shell(command, environment: environment, output: output, timeout: timeout)
        record.cost.wallSeconds = Timing.seconds(ContinuousClock.now - started)
        record.cost.guestThreadSeconds = max(0, Self.childrenCPUSeconds() - childrenBefore)
        if let daemon, let before = daemonBefore {
            record.cost.daemonSeconds = Double((ProcessAccounting.processThreadTime(pid: daemon.pid) - before).runNanoseconds) / 1e9
        }
        if let before = energyBefore, let after = EnergyMeter().read() { record.cost.energyJoules = EnergyMeter.joules(from: before, to: after) }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        switch status {
        case .exited(0):
            switch extractor.score(in: text) {
            case .success(let score): record.raw = score
            case .failure(let error): record.failure = "\(error); output ends: \(Self.tail(text))"
            }
        case .exited(let code): record.failure = "the command exited with status \(code); output ends: \(Self.tail(text))"
        case .signalled(let signal): record.failure = "the command was killed by signal \(signal)"
        case .timedOut: record.failure = "the command did not finish within \(timeout) (killed)"
        case .notStarted(let reason): record.failure = "the command did not start: \(reason)"
        }
        return (record, actuators)
    }

    enum ShellStatus: Equatable {
        case exited(Int32)
        case signalled(Int32)
        case timedOut
        case notStarted(String)
    }

    /// `sh -c command` in a process group of its own (posix_spawn,
    /// default signal dispositions, an empty signal mask), stdin from
    /// /dev/null, stdout and stderr to `output`; the whole group is killed
    /// when it overruns `timeout`. Reaped here, so its CPU time (and that of
    /// the children it reaped) shows in RUSAGE_CHILDREN.
    static func shell(_ command: String, environment: [String: String], output: String, timeout: Duration) -> ShellStatus {
        var actions = posix_spawn_file_actions_t()
        var attributes = posix_spawnattr_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawnattr_init(&attributes)
        defer {
            posix_spawn_file_actions_destroy(&actions)
            posix_spawnattr_destroy(&attributes)
        }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var defaults = sigset_t()
        sigfillset(&defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setpgroup(&attributes, 0)
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        let argv = ["/bin/sh", "-c", command]
        let envp = environment.map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let spawned = withCStrings(argv) { arguments in
            withCStrings(envp) { variables in
                posix_spawn(&pid, "/bin/sh", &actions, &attributes, arguments, variables)
            }
        }
        guard spawned == 0 else { return .notStarted(String(cString: strerror(spawned))) }
        let deadline = ContinuousClock.now + timeout
        var status: Int32 = 0
        while true {
            let reaped = waitpid(pid, &status, WNOHANG)
            if reaped == pid { break }
            if reaped < 0, errno != EINTR { return .notStarted("waitpid: \(String(cString: strerror(errno)))") }
            if ContinuousClock.now >= deadline {
                kill(-pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0, errno == EINTR {}
                return .timedOut
            }
            usleep(10_000)
        }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, spelled out (macros).
        let signal = status & 0x7F
        return signal == 0 ? .exited((status >> 8) & 0xFF) : .signalled(signal)
    }

    /// `body` with `strings` as a NULL-terminated C array.
    static func withCStrings<Result>(
        _ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> Result
    ) -> Result {
        let copies = strings.map { strdup($0) }
        defer { for copy in copies { free(copy) } }
        return (copies + [nil]).withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    /// user + system time of every reaped child, s (getrusage RUSAGE_CHILDREN).
    static func childrenCPUSeconds() -> Double {
        var usage = rusage()
        guard getrusage(RUSAGE_CHILDREN.rawValue, &usage) == 0 else { return 0 }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    static func tail(_ text: String) -> String {
        let lines = text.split(separator: "\n").suffix(3).joined(separator: " | ")
        return lines.isEmpty ? "(nothing)" : String(lines.suffix(300))
    }
}
