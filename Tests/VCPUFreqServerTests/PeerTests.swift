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

/// A VMM that connects, says HELLO, forks and exits: its child keeps the
/// socket and, once the parent is gone (and reaped), asks to ATTACH its own
/// thread. The pid SO_PEERCRED recorded is no longer the process that
/// connected (and could be reused by anyone): the daemon refuses. Prints the
/// reply's type, code and message. Python, because the test process cannot
/// fork safely. The top process only reaps the one that connects.
let orphanScript = #"""
import os, socket, struct, sys, time
def message(kind, ident, body=b''):
    return struct.pack('<HHIII', kind, 0, 16 + len(body), ident, 0) + body
def text(value):
    data = value.encode()
    return struct.pack('<H', len(data)) + data
connecting = os.fork()
if connecting != 0:
    os.waitpid(connecting, 0)
    os._exit(0)
s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
s.connect(sys.argv[1])
s.send(message(1, 1, struct.pack('<IHHI', 0x46504356, 1, 1, 0) + text('orphan')))
s.recv(65536)
if os.fork() != 0:
    os._exit(0)
time.sleep(0.3)
tid = os.getpid()
s.send(message(2, 2, text('orphan') + text('regs') + struct.pack('<IIII', 2, 0, tid, tid)))
reply = s.recv(65536)
kind, = struct.unpack_from('<H', reply, 0)
code, = struct.unpack_from('<I', reply, 16)
length, = struct.unpack_from('<H', reply, 24)
print(kind, code, reply[26:26 + length].decode(), flush=True)
"""#

extension DaemonTests.Peers {
    @Test(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/python3"), "needs python3"))
    func connectingProcessThatExitedCannotAttach() throws {
        let daemon = try Daemon(topology: TestTopology.toml())
        let run = try runProgram(["/usr/bin/python3", "-c", orphanScript, daemon.socketPath])
        #expect(run.status == 0, "\(run.error)")
        let words = run.output.split(separator: " ", maxSplits: 2)
        #expect(words.count == 3, "\(run.output)")
        #expect(words.first == "255", "an ERROR: \(run.output)")
        #expect(words.dropFirst().first == "5", "foreign_thread: \(run.output)")
        #expect(run.output.contains("that connected has exited"), "\(run.output)")
        #expect(try daemon.client().status().vms.isEmpty)
    }
}
