import Foundation
import Glibc
import Testing
import VCPUFreqClient

/// uid/gid of `nobody`/`nogroup` on Debian: the unprivileged peer.
let nobodyID: UInt32 = 65534

/// `vcpufreq status --socket PATH` run as uid/gid 65534 with no
/// supplementary groups (setpriv, util-linux).
func statusAsNobody(_ daemon: Daemon) throws -> (status: Int32, output: String, error: String) {
    try runProgram([
        "/usr/bin/setpriv", "--reuid=\(nobodyID)", "--regid=\(nobodyID)", "--clear-groups",
        vcpufreqBinary, "status", "--socket", daemon.socketPath,
    ])
}

func fileMode(_ path: String) -> (mode: UInt32, gid: UInt32)? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return (UInt32(info.st_mode) & 0o7777, info.st_gid)
}

extension DaemonTests {
    @Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"), "needs setpriv (util-linux)"))
    struct Peers {
        /// 0600 by default: only the daemon's owner may even connect.
        @Test func socketIsOwnerOnlyByDefault() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            #expect(fileMode(daemon.socketPath)?.mode == 0o600)
            let run = try statusAsNobody(daemon)
            #expect(run.status != 0)
            #expect(run.error.contains("Permission denied") || run.error.contains("permissionDenied"), "\(run.error)")
        }

        /// The socket is reachable for the group (0660, group 65534) but uid
        /// 65534 is not in the allow-list: SO_PEERCRED refuses it, with
        /// ERROR permission_denied, and the daemon logs why.
        @Test func uidNotAllowedIsRefused() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), arguments: ["--socket-group", "\(nobodyID)"])
            let mode = try #require(fileMode(daemon.socketPath))
            #expect(mode.mode == 0o660 && mode.gid == nobodyID)
            let run = try statusAsNobody(daemon)
            #expect(run.status != 0)
            #expect(run.error.contains("permissionDenied"), "stderr: \(run.error)")
            #expect(run.error.contains("uid \(nobodyID)"), "stderr: \(run.error)")
            #expect(eventually { daemon.log.contains("peer refused: uid not allowed") })
            #expect(daemon.log.contains("uid=\(nobodyID)"))
            // The daemon serves its own uid as before.
            #expect(try daemon.client().status().vms.isEmpty)
        }

        /// --allow-uid lets the same peer in.
        @Test func allowListedUIDIsServed() throws {
            let daemon = try Daemon(
                topology: TestTopology.toml(), arguments: ["--socket-group", "\(nobodyID)", "--allow-uid", "\(nobodyID)"])
            let run = try statusAsNobody(daemon)
            #expect(run.status == 0, "stderr: \(run.error)")
            #expect(run.output.hasPrefix("vcpufreq "), "\(run.output)")
            #expect(daemon.log.contains("uid=\(nobodyID)"))
        }
    }
}
