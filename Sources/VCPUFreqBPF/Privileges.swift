import Glibc

/// The capabilities that decide whether this process may load BPF tracing
/// programs, read from /proc/self/status (CapEff). Used to explain a refused
/// load, never to skip one: the kernel has the last word.
struct Privileges: Equatable, Sendable {
    /// Capability numbers of include/uapi/linux/capability.h.
    static let capSysAdmin = 21
    static let capPerfmon = 38
    static let capBPF = 39

    var effective: UInt64
    var uid: UInt32

    /// CAP_BPF + CAP_PERFMON (5.8+), or CAP_SYS_ADMIN.
    var canLoadBPF: Bool {
        has(Self.capSysAdmin) || (has(Self.capBPF) && has(Self.capPerfmon))
    }

    func has(_ capability: Int) -> Bool { effective & (1 << UInt64(capability)) != 0 }

    var summary: String {
        let names = [(Self.capBPF, "CAP_BPF"), (Self.capPerfmon, "CAP_PERFMON"), (Self.capSysAdmin, "CAP_SYS_ADMIN")]
        let held = names.filter { has($0.0) }.map(\.1)
        return "uid \(uid), effective capabilities include "
            + (held.isEmpty ? "none of CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN" : held.joined(separator: ", "))
    }

    /// Parses the `CapEff:` line of a /proc/<pid>/status text.
    static func parse(status: String, uid: UInt32) -> Privileges {
        for line in status.split(separator: "\n") where line.hasPrefix("CapEff:") {
            let hex = line.dropFirst("CapEff:".count).filter { !$0.isWhitespace }
            return Privileges(effective: UInt64(hex, radix: 16) ?? 0, uid: uid)
        }
        return Privileges(effective: 0, uid: uid)
    }

    static func current() -> Privileges {
        parse(status: FileSystems.readSmallFile("/proc/self/status") ?? "", uid: getuid())
    }
}
