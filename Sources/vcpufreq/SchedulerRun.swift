import ArgumentParser
import Foundation
import SystemPackage
import VCPUFreqBPF
import VCPUFreqLinux

/// `vcpufreq scheduler run`: loads bpf/vcpufreq_sched.bpf.c on the pinned
/// util-hint map and keeps it loaded until a signal, `--duration-s`, or the
/// kernel ejects it.
struct SchedulerRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Load the sched_ext scheduler on the pinned util-hint map until SIGINT/SIGTERM or an eject.",
        discussion: """
            Places by the host clusters of --topology and reads the hints at --bpf-pin-path (a running daemon's map; \
            created there when absent, so a daemon started later fills it). Exit status: 0 when stopped by a signal or \
            --duration-s, 1 when it cannot be loaded (the reason is printed), 2 when the kernel ejected it.
            """
    )

    @Option(help: "The topology file (TOML) whose host clusters the scheduler places by.")
    var topology: String

    @Option(name: .customLong("bpf-pin-path"), help: "The pinned util-hint map to read.")
    var pinPath = VCPUThreadMonitor.defaultUtilHintPinPath

    @OptionGroup var tuning: SchedulerTuningOptions

    @Option(name: .customLong("duration-s"), help: "Unload after this many seconds (0 = until a signal).")
    var durationSeconds = 0

    func validate() throws {
        guard pinPath.hasPrefix("/") else { throw ValidationError("--bpf-pin-path: \"\(pinPath)\" is not an absolute path") }
        guard (0...86_400 * 365).contains(durationSeconds) else { throw ValidationError("--duration-s must be 0 or more") }
    }

    func run() throws {
        let host = try TopologyFileOptions(file: topology, vm: nil).load().host
        let clusters: SchedulerClusters
        do { clusters = try SchedulerClusters(host: host) } catch { throw CLIError("\(topology): \(error)") }
        // Signals first: a SIGTERM between registration and the wait must unload, not kill.
        let signals: SignalFD
        let epoll: Epoll
        let timer: TimerFD
        do {
            signals = try SignalFD(signals: [.terminate, .interrupt])
            epoll = try Epoll()
            timer = try TimerFD()
        } catch { throw CLIError("cannot set up the event loop: \(error)") }

        var configuration = SchedExtScheduler.Configuration(utilHintPinPath: pinPath, clusters: clusters)
        configuration.settings = tuning.settings
        let scheduler = SchedExtScheduler(configuration: configuration)
        let status = scheduler.start()
        print("scheduler: \(status.summary)")
        guard status.isRunning else { throw ExitCode.failure }

        let (signalToken, exitToken, timerToken): (UInt64, UInt64, UInt64) = (1, 2, 3)
        do {
            try epoll.add(signals.descriptor, events: .readable, token: signalToken)
            try epoll.add(FileDescriptor(rawValue: scheduler.exitDescriptor), events: .readable, token: exitToken)
            if durationSeconds > 0 {
                try timer.arm(atNanoseconds: MonotonicClock.nowNanoseconds() + UInt64(durationSeconds) * 1_000_000_000)
                try epoll.add(timer.descriptor, events: .readable, token: timerToken)
            }
        } catch {
            scheduler.stop()
            throw CLIError("cannot watch the scheduler: \(error)")
        }
        let ready = EpollReadyBuffer(capacity: 4)
        var ejected = false
        waiting: while true {
            let count: Int
            do { count = try epoll.wait(into: ready, timeoutMilliseconds: 1000) } catch .interrupted { continue } catch {
                break waiting
            }
            if count == 0 {
                // Belt and braces: sysfs is read too, should the exit notice not come.
                if case .ejected = scheduler.checkExit().state { ejected = true; break waiting }
                continue
            }
            for index in 0..<count {
                switch ready[index].token {
                case exitToken:
                    if case .ejected = scheduler.checkExit().state { ejected = true; break waiting }
                default:
                    break waiting
                }
            }
        }
        let counters = scheduler.snapshot()?.counters
        scheduler.stop()
        if let counters { print("counters: \(Self.describe(counters))") }
        print("scheduler: \(scheduler.status.summary)")
        if ejected { throw ExitCode(2) }
    }

    static func describe(_ counters: SchedulerCounters) -> String {
        counters.byName.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
