/// What the kernel told the scheduler when it disabled it (ops.exit(): map
/// "exit_info"). The kinds are the kernel's `enum scx_exit_kind`.
public struct SchedulerExit: Equatable, Sendable, CustomStringConvertible {
    /// `enum scx_exit_kind` (kernel/sched/ext/internal.h).
    public var kind: Int64
    public var code: Int64
    /// CPU that initiated the exit; negative when none did.
    public var cpu: Int32
    /// The kernel's text for `kind` ("unregistered from user space", "runnable task stall").
    public var reason: String
    /// Details: for an error, what went wrong (the watchdog names the task).
    public var message: String

    public init(kind: Int64, code: Int64, cpu: Int32, reason: String, message: String) {
        self.kind = kind
        self.code = code
        self.cpu = cpu
        self.reason = reason
        self.message = message
    }

    /// SCX_EXIT_UNREG: user space unloaded it (closed its link): not an eject.
    public static let unregisteredKind: Int64 = 64
    /// SCX_EXIT_SYSRQ: sysrq-S.
    public static let sysrqKind: Int64 = 67
    /// SCX_EXIT_ERROR_STALL: the watchdog saw a task runnable longer than timeout_ms.
    public static let watchdogKind: Int64 = 1026

    /// Our name for `kind`.
    public var kindName: String {
        switch kind {
        case 1: return "done"
        case 64: return "unregistered"
        case 65: return "unregistered by the scheduler"
        case 66: return "unregistered by the kernel"
        case 67: return "sysrq"
        case 68: return "parent scheduler exiting"
        case 69: return "killed by the parent scheduler"
        case 1024: return "error"
        case 1025: return "scheduler error"
        case 1026: return "watchdog"
        case 1027: return "reenqueue limit"
        case 1028: return "rescue overload"
        default: return "exit kind \(kind)"
        }
    }

    /// An error kind (1024 and up): the kernel found the scheduler at fault.
    public var isError: Bool { kind >= 1024 }

    /// The kernel disabled it, rather than us closing the link.
    public var isEject: Bool { kind != Self.unregisteredKind }

    /// `watchdog (runnable task stall): vcpufreq-bench[123] failed to run for 5.0s`
    public var description: String {
        var text = kindName
        if !reason.isEmpty { text += " (\(reason))" }
        if !message.isEmpty { text += ": \(message)" }
        return text
    }
}
