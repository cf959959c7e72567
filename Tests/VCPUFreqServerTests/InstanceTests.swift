import Foundation
import Glibc
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux

/// Runs `vcpufreq serve` that is expected to refuse: its exit status
/// (nil if it was still running after `timeoutSeconds`, then killed), its
/// standard error and how long it ran.
func serveExpectingRefusal(_ arguments: [String], timeoutSeconds: Double = 10) throws -> (
    status: Int32?, error: String, seconds: Double
) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: vcpufreqBinary)
    process.arguments = ["serve"] + arguments
    let error = Pipe()
    process.standardError = error
    process.standardOutput = FileHandle.nullDevice
    process.standardInput = FileHandle.nullDevice
    let start = Date()
    try runWithDefaultSignalMask(process)
    let deadline = start.addingTimeInterval(timeoutSeconds)
    while process.isRunning && Date() < deadline { usleep(2000) }
    let finished = !process.isRunning
    if !finished { kill(process.processIdentifier, SIGKILL) }
    process.waitUntilExit()
    let text = String(decoding: error.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    return (finished ? process.terminationStatus : nil, text, Date().timeIntervalSince(start))
}

/// The kernel's state letter of a process (field 3 of /proc/<pid>/stat).
func processState(_ pid: Int32) -> Character? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
        let close = text.lastIndex(of: ")")
    else { return nil }
    return text[text.index(after: close)...].first { $0 != " " }
}

extension DaemonTests {
    /// One daemon per socket, per state directory, per metrics file
    /// (docs/protocol.md, "One daemon per socket and state directory").
    @Suite struct Instances {
        /// A second daemon on the first one's socket, state directory, both,
        /// or metrics file exits non-zero at once, naming the path and the
        /// first daemon's pid, and changes nothing: the first keeps its
        /// socket file, its journal and its VM, and `status` reaches it.
        /// After the first is killed, the next daemon there recovers its journal.
        @Test func secondDaemonRefusesAndChangesNothing() throws {
            let first = try Daemon(topology: TestTopology.toml(), label: "first")
            let threads = try VCPUThreads()
            let client = try first.client()
            let shared = try hintEverything(client, threads, name: "kept")
            _ = shared
            let hinted = threads.live
            let socketFile = FileIdentity.of(path: first.socketPath)
            let journal = first.journalEntries()
            let records = try journal.map { try String(contentsOfFile: first.stateDirectory + "/threads/" + $0, encoding: .utf8) }
            #expect(journal.count == 2)

            let other = makeTemporaryDirectory("second")
            defer { try? FileManager.default.removeItem(atPath: other) }
            let base = ["--topology", first.topologyPath, "--log-level", "debug"]
            let cases: [(arguments: [String], names: String)] = [
                (["--socket", first.socketPath, "--state-dir", other + "/state"], "socket \(first.socketPath)"),
                (["--socket", other + "/socket", "--state-dir", first.stateDirectory], "state directory \(first.stateDirectory)"),
                (["--socket", first.socketPath, "--state-dir", first.stateDirectory], "state directory \(first.stateDirectory)"),
                (
                    ["--socket", other + "/socket", "--state-dir", other + "/state", "--metrics-file", first.metricsPath],
                    "metrics file \(first.metricsPath)"
                ),
            ]
            for (arguments, names) in cases {
                let refused = try serveExpectingRefusal(base + arguments)
                #expect(refused.status == 1, "\(arguments): \(refused.error)")
                #expect(refused.error.contains("cannot use \(names): another vcpufreq daemon (pid \(first.pid), serving)"), "\(refused.error)")
                #expect(refused.seconds < 5, "a refusal is at once (\(refused.seconds) s)")
                // It stopped before loading BPF, recovering a journal or binding.
                #expect(!refused.error.contains("BPF programs loaded") && !refused.error.contains("listening"), "\(refused.error)")
                #expect(!FileManager.default.fileExists(atPath: other + "/socket"))
                #expect(!FileManager.default.fileExists(atPath: other + "/state/threads"))

                #expect(FileIdentity.of(path: first.socketPath) == socketFile, "the first daemon's socket file was replaced")
                #expect(first.journalEntries() == journal)
                #expect(try journal.map { try String(contentsOfFile: first.stateDirectory + "/threads/" + $0, encoding: .utf8) } == records)
                #expect(threads.live == hinted)
                #expect(try first.client("status after a refusal").status().vms.map(\.name) == ["kept"])
            }

            // Once the first daemon is gone (SIGKILL: its lock files, stale
            // socket and journal stay), a daemon on the same socket and
            // state directory starts and recovers the journal: neither the
            // refused daemons nor the lock files left anything in its way.
            let killed = first.stop(signal: SIGKILL)
            #expect(killed.signaled)
            #expect(threads.live == hinted, "nobody restores after SIGKILL")
            #expect(FileIdentity.of(path: first.socketPath) == socketFile, "a killed daemon's socket file stays")
            let next = try Daemon(topology: TestTopology.toml(), reusing: first)
            #expect(threads.restored, "\(threads.live) vs \(threads.originals)")
            #expect(next.journalEntries().isEmpty)
            #expect(try next.client().status().daemon.recoveredThreads == 2)
        }

        /// A listener that holds no lock (an older vcpufreq, a lock file
        /// someone removed): the connect probe finds it alive, and the
        /// daemon refuses with its pid instead of unlinking it.
        @Test func liveSocketWithoutALockIsNotTakenOver() throws {
            let directory = makeTemporaryDirectory("unlocked")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let path = directory + "/socket"
            let listener = try SeqPacketListener(path: path)
            try TestTopology.toml().write(toFile: directory + "/topology.toml", atomically: true, encoding: .utf8)
            let refused = try serveExpectingRefusal([
                "--topology", directory + "/topology.toml", "--socket", path, "--state-dir", directory + "/state", "--no-bpf",
            ])
            #expect(refused.status == 1, "\(refused.error)")
            #expect(refused.error.contains("cannot use socket \(path): a daemon (pid \(getpid())) is listening on it"), "\(refused.error)")
            #expect(FileIdentity.of(path: path) == listener.boundFile)
            _ = try SeqPacketConnection.connect(to: path)
            // The probe's connection and this one: both reached the listener.
            #expect(try listener.accept() != nil)
        }

        /// `systemctl restart` or `kill; vcpufreq serve`: the new daemon starts
        /// while the old one still has its VM's hints on the threads. It
        /// waits until the old one has restored them (and removed its
        /// records), so it neither recovers records the old daemon is still
        /// restoring nor captures hints as originals; the VMM reattaches to
        /// it and no hint and no record of the new daemon is lost when the
        /// old one finishes. Held stopped: the old daemon is stopped
        /// (SIGSTOP) with SIGTERM pending, so the new one always meets a
        /// daemon that has not even read its SIGTERM yet; otherwise SIGTERM
        /// and the new daemon's start follow each other at once, as systemd
        /// does them, and the new one meets whatever the timing gives.
        @Test(arguments: [true, false])
        func restartWaitsForTheStoppingDaemonAndLosesNothing(heldStopped: Bool) throws {
            let old = try Daemon(topology: TestTopology.toml(), label: "restart")
            let threads = try VCPUThreads()
            let oldClient = try old.client()
            let oldShared = try hintEverything(oldClient, threads, name: "restarted")
            _ = (oldClient, oldShared)
            #expect(old.journalEntries().count == 2)

            var released: Thread?
            if heldStopped {
                kill(old.pid, SIGSTOP)
                #expect(eventually { processState(old.pid) == "T" })
                kill(old.pid, SIGTERM)
                // Let the old daemon go once the new one says it waits for it.
                released = Thread { [directory = old.directory, pid = old.pid] in
                    _ = eventually(timeoutSeconds: 10) {
                        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
                        return names.filter { $0.hasPrefix("stderr-restart-") }.contains { name in
                            ((try? String(contentsOfFile: directory + "/" + name, encoding: .utf8)) ?? "")
                                .contains("waiting for the daemon that is stopping")
                        }
                    }
                    kill(pid, SIGCONT)
                }
                released?.start()
            } else {
                kill(old.pid, SIGTERM)
            }
            let new = try Daemon(topology: TestTopology.toml(), reusing: old)
            // Ready: the old daemon restored every thread and removed its
            // records before the new one took the state directory.
            #expect(threads.restored, "\(threads.live) vs \(threads.originals)")
            let exit = old.stop()
            #expect(exit.status == 0 && !exit.signaled, "\(exit)\n\(old.log)")
            #expect(old.log.contains("stopped; every thread restored"))
            if heldStopped {
                #expect(new.log.contains("waiting for the daemon that is stopping"), "\(new.log)")
                #expect(new.log.contains("pid \(old.pid), stop signal pending"), "\(new.log)")
            }
            #expect(!new.log.contains("recovered journal of a previous daemon"), "\(new.log)")
            #expect(try new.client().status().daemon.recoveredThreads == 0)

            let client = try new.client()
            let shared = try hintEverything(client, threads, name: "restarted")
            _ = shared
            let captures = new.records().filter { $0.action == "capture" }
            #expect(captures.map(\.tid) == threads.tids)
            #expect(captures.map { try? CPUList(parsing: $0.cpus ?? "").ids } == threads.originals.map(\.cpus))
            // Nothing of the old daemon's exit reaches the new one's state.
            usleep(100_000)
            #expect(new.journalEntries().count == 2)
            #expect(threads.live.allSatisfy { $0.sliceNanoseconds == 400_000 }, "\(threads.live)")
            let status = try #require(try client.status().vms.first)
            #expect(status.vcpus.allSatisfy { ($0.utilMin ?? 0) > 0 && $0.actuationErrors == 0 }, "\(status.vcpus)")
            #expect(try client.detach() == 2)
            #expect(threads.restored)
            #expect(new.journalEntries().isEmpty)
        }
    }
}
