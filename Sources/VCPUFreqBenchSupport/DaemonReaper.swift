import Glibc
import Synchronization

/// Stops the benchmark's daemon when the benchmark itself is interrupted
/// (Ctrl-C, SIGTERM, SIGHUP): without it the child `vcpufreq serve` would
/// outlive its parent. The handler only does async-signal-safe things — an
/// atomic load, kill(2) of that one PID, then the default action.
public enum DaemonReaper {
    private static let pid = Atomic<Int32>(0)
    private static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    /// Watches `daemon` until `disarm()`.
    public static func arm(_ daemon: Int32) {
        pid.store(daemon, ordering: .sequentiallyConsistent)
        for number in signals {
            signal(number) { received in
                let daemon = DaemonReaper.pid.load(ordering: .sequentiallyConsistent)
                if daemon > 0 { kill(daemon, SIGTERM) }
                signal(received, SIG_DFL)
                raise(received)
            }
        }
    }

    /// The daemon is stopped by its owner: restore the default actions.
    public static func disarm() {
        pid.store(0, ordering: .sequentiallyConsistent)
        for number in signals { signal(number, SIG_DFL) }
    }
}
