import Logging
import SystemPackage
import VCPUFreqLinux

/// The locks that make a daemon the only one on its state directory, its
/// socket and its metrics file, taken before the daemon touches anything
/// (no BPF load, no journal recovery, no socket removed) and released in
/// reverse order once every thread is restored (docs/protocol.md,
/// "One daemon per socket and state directory"):
///
/// 1. `<state-dir>/daemon.lock`: the journal and everything derived from
///    the instance (BPF pins, cgroups). Not with `--dry-run`, which keeps
///    no journal.
/// 2. `<socket>.lock`: the socket path. A lock beside the socket, not only
///    a connect() probe, so two daemons starting at once on one socket (but
///    different state directories) are told apart by the kernel rather than
///    by who probed first: between a probe finding nothing and bind, the
///    other daemon could remove and re-create the file.
/// 3. `<metrics-file>.lock`, with `--metrics-file`.
///
/// A lock whose holder is stopping (SIGTERM sent, restoring its threads) is
/// waited for, so `systemctl restart` or `kill; vcpufreq serve` starts
/// the new daemon once the old one has put every thread back; any other
/// holder makes this daemon exit with the path and the holder's pid.
final class InstanceLocks {
    /// In the order taken.
    private var held: [InstanceLock] = []

    init(configuration: ServerConfiguration, instance: DaemonInstance, logger: Logger) throws(ServerError) {
        let wait = configuration.stoppingDaemonWaitMilliseconds
        if !configuration.dryRun {
            do {
                try RestoreJournal.makeDirectory(instance.stateDirectory)
            } catch {
                throw ServerError("cannot use state directory \(instance.stateDirectory): \(error)")
            }
            try take(
                instance.lockPath, kind: .file, what: "state directory \(instance.stateDirectory)", flag: "--state-dir",
                wait: wait, logger: logger)
        }
        try take(
            configuration.socketPath + ".lock", kind: .file, what: "socket \(configuration.socketPath)", flag: "--socket",
            wait: wait, logger: logger)
        if let metrics = configuration.metricsPath {
            try take(metrics + ".lock", kind: .file, what: "metrics file \(metrics)", flag: "--metrics-file", wait: wait, logger: logger)
        }
    }

    /// Takes one lock, or throws the operator's message for `what`.
    private func take(_ path: String, kind: InstanceLock.Kind, what: String, flag: String, wait: Int, logger: Logger) throws(ServerError) {
        do {
            held.append(
                try InstanceLock.acquire(path, kind: kind, stoppingWaitMilliseconds: wait) { holder in
                    logger.notice("waiting for the daemon that is stopping", metadata: [
                        "holder": "\(holder)", "lock": "\(path)", "wait_ms": "\(wait)",
                    ])
                })
        } catch {
            throw Self.refusal(error, what: what, flag: flag)
        }
    }

    /// The message of a daemon that cannot have `what`.
    static func refusal(_ error: InstanceLockError, what: String, flag: String) -> ServerError {
        switch error {
        case .held(let path, let holder):
            return ServerError(
                "cannot use \(what): another vcpufreq daemon (\(holder)) is using it (lock \(path)); "
                    + "stop that daemon first, or give this one its own \(flag)")
        case .stillStopping(let path, let holder, let waited):
            return ServerError(
                "cannot use \(what): another vcpufreq daemon (\(holder)) is still stopping after \(waited / 1000) s (lock \(path))")
        case .failed:
            return ServerError("cannot use \(what): \(error)")
        }
    }

    /// Writes the daemon's state into every lock file.
    func announce(_ state: InstanceLock.State) {
        for lock in held { lock.announce(state) }
    }

    /// Releases every lock, the last taken first.
    func release() {
        for lock in held.reversed() { lock.release() }
        held = []
    }
}
