import Foundation
import Glibc
import Testing
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqProtocol

/// Attaches `threads` as VM `name` and gives every vCPU a latency hint
/// through the shared page, so each thread has a changed slice and a pin;
/// returns once both are on the live threads.
func hintEverything(_ client: VCPUFreqClient, _ threads: VCPUThreads, name: String) throws -> MappedShared {
    _ = try client.attach(vmName: name, profile: "regs", threadIDs: threads.tids)
    let shared = try MappedShared(try client.mapShared(mirror: true, doorbells: true), vcpuCount: threads.tids.count)
    for slot in 0..<threads.tids.count {
        try shared.publish(slot: slot, utilization: 512, flags: [.utilValid, .latencySensitive])
    }
    let hinted = eventually {
        threads.live.allSatisfy { $0.sliceNanoseconds == 400_000 } && threads.live.map(\.cpus) == TestTopology.pinnedCPUs
    }
    #expect(hinted, "\(threads.live)")
    return shared
}

extension DaemonTests {
    @Suite struct Restore {
        /// The VMM closes its connection (or dies): the daemon detaches the
        /// VM and restores every thread, and forgets the journal records.
        @Test func onDisconnect() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let threads = try VCPUThreads()
            var client: VCPUFreqClient? = try daemon.client()
            let shared = try hintEverything(client!, threads, name: "leaver")
            #expect(daemon.journalEntries().count == 2)
            client = nil
            #expect(threads.waitUntilRestored(), "\(threads.live) vs \(threads.originals)")
            #expect(eventually { daemon.journalEntries().isEmpty })
            #expect(eventually { shared.memory.load(0x0c) & 1 == 0 }, "host status must drop active")
            #expect(try daemon.client().status().vms.isEmpty)
            #expect(daemon.log.contains("peer closed the connection"))
            let restores = daemon.records().filter { $0.action == "restore" }
            #expect(Set(restores.map(\.tid)) == Set(threads.tids))
        }

        /// A vCPU thread that exited is not an error: hints to it are
        /// counted as gone, nothing is logged as a failure, and detach
        /// restores the threads that remain.
        @Test func goneThreadIsQuiet() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            vm.threads.stop(1)
            try shared.publish(slot: 1, utilization: 800, flags: [.utilValid, .latencySensitive])
            try shared.publish(slot: 0, utilization: 100, flags: [.utilValid, .latencySensitive])
            #expect(eventually { LiveAttributes.slice(vm.threads.tids[0]) == 400_000 })
            let status = try #require(try vm.client.status().vms.first)
            #expect(status.counters.threadsGone >= 1)
            #expect(status.counters.actuationErrors == 0)
            #expect(try vm.client.detach() == 1)
            #expect(LiveAttributes.of(vm.threads.tids[0]) == vm.threads.originals[0])
            #expect(!daemon.log.contains("cannot apply hint"))
            #expect(!daemon.log.contains("cannot restore thread"))
            #expect(daemon.journalEntries().isEmpty)
        }

        /// SIGTERM and SIGINT: stop accepting, restore every thread of every
        /// VM, remove the socket, exit 0.
        @Test(arguments: [SIGTERM, SIGINT])
        func onSignal(_ signal: Int32) throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let first = try VCPUThreads()
            let second = try VCPUThreads()
            let firstClient = try daemon.client()
            let secondClient = try daemon.client()
            let firstShared = try hintEverything(firstClient, first, name: "one")
            let secondShared = try hintEverything(secondClient, second, name: "two")
            _ = (firstShared, secondShared)
            #expect(daemon.journalEntries().count == 4)

            let exit = daemon.stop(signal: signal)
            #expect(exit.status == 0 && !exit.signaled, "\(exit)\n\(daemon.log)")
            #expect(first.restored, "\(first.live) vs \(first.originals)")
            #expect(second.restored, "\(second.live) vs \(second.originals)")
            #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
            #expect(daemon.journalEntries().isEmpty)
            #expect(daemon.log.contains("stopped; every thread restored"))
            // The VMMs see the connection closed.
            #expect(throws: ClientError.self) { try firstClient.read(vcpu: 0, offset: 0) }
        }

        /// SIGKILL leaves the hints on the threads; a daemon started on the
        /// same state directory restores them before it accepts anyone, so
        /// a VMM that reconnects has its true originals captured.
        @Test func afterSIGKILLTheNextDaemonRestores() throws {
            let first = try Daemon(topology: TestTopology.toml())
            let threads = try VCPUThreads()
            let client = try first.client()
            let shared = try hintEverything(client, threads, name: "survivor")
            _ = shared
            let hinted = threads.live
            #expect(hinted != threads.originals)

            let exit = first.stop(signal: SIGKILL)
            #expect(exit.signaled)
            usleep(20_000)
            #expect(threads.live == hinted, "nobody restores after SIGKILL")
            #expect(first.journalEntries().count == 2)
            // Its socket file stays too: stale (nobody listens), so the next
            // daemon's connect probe finds it refused and replaces it.
            #expect(FileManager.default.fileExists(atPath: first.socketPath))

            let second = try Daemon(topology: TestTopology.toml(), reusing: first)
            // Ready means recovered: no waiting here.
            #expect(threads.restored, "\(threads.live) vs \(threads.originals)")
            #expect(second.journalEntries().isEmpty)
            #expect(second.log.contains("recovered journal of a previous daemon"))
            let status = try second.client().status()
            #expect(status.daemon.recoveredThreads == 2)

            // The VMM reconnects with the same threads: the capture is of the
            // originals, so its own detach puts the originals back.
            let again = try second.client()
            let sharedAgain = try hintEverything(again, threads, name: "survivor")
            _ = sharedAgain
            let captures = second.records().filter { $0.action == "capture" }
            #expect(captures.map(\.tid) == threads.tids)
            #expect(captures.map { try? CPUList(parsing: $0.cpus ?? "").ids } == threads.originals.map(\.cpus))
            #expect(try again.detach() == 2)
            #expect(threads.restored, "\(threads.live) vs \(threads.originals)")
        }

        /// --dry-run captures and records (JSON lines on stdout) but never
        /// changes a thread and keeps no journal.
        @Test func dryRunChangesNothing() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), arguments: ["--dry-run"], record: false)
            let vm = try AttachedVM(daemon: daemon)
            #expect(vm.attach.actuators.hasPrefix("dry-run "))
            let shared = try vm.mapShared()
            try shared.publish(slot: 0, utilization: 700, flags: [.utilValid, .latencySensitive])
            #expect(eventually { shared.guest.readHostArea(slot: 0)?.utilMin == 700 })
            #expect(vm.threads.restored, "a dry run must not touch \(vm.threads.live)")
            #expect(daemon.journalEntries().isEmpty)
            #expect(shared.memory.load(0x0c) & 2 == 2, "degraded: nothing is applied")
            #expect(try vm.client.status().daemon.dryRun)
            #expect(try vm.client.detach() == 2)
            let lines = RecordLine.parse(text: daemon.standardOutput)
            #expect(lines.map(\.action) == ["capture", "capture", "apply", "apply", "apply", "restore", "restore"])
            #expect(lines.first { $0.action == "apply" && $0.utilMin == 700 }?.latency == "slice=400us")
        }

        /// A peer that stops reading its replies: the daemon queues them (up
        /// to its outbox limit) and then drops that peer, restoring its VM;
        /// a slow reader that catches up gets every reply, in order.
        @Test func peerThatStopsReading() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let threads = try VCPUThreads()
            let slow = try RawPeer(daemon.socketPath)
            try slow.hello()
            try slow.attach(vmName: "slow", profile: "regs", threadIDs: threads.tids)
            // 3000 READs unanswered by the socket: most wait in the outbox.
            var ids: [UInt32] = []
            for _ in 0..<3000 { ids.append(try slow.send(.read(.init(vcpu: 0, width: 4, offset: Offset.perftblLen)))) }
            for id in ids {
                let reply = try slow.receive()
                guard case .message(let header, .readOK(3, 0), _) = reply, header.id == id else {
                    Issue.record("reply to \(id): \(reply)")
                    return
                }
            }

            // Now a peer that never reads: cut off once 1 MiB is queued.
            let stuck = try RawPeer(daemon.socketPath)
            try stuck.hello()
            let stuckThreads = try VCPUThreads()
            try stuck.attach(vmName: "stuck", profile: "regs", threadIDs: stuckThreads.tids)
            var sent = 0
            var cutOff = false
            while sent < 200_000 {
                do {
                    try stuck.send(.read(.init(vcpu: 0, width: 4, offset: Offset.perftblLen)))
                } catch {
                    cutOff = true
                    break
                }
                sent += 1
            }
            #expect(cutOff, "sent \(sent) without being cut off")
            #expect(eventually { daemon.log.contains("send failed: peer not reading") })
            #expect(stuckThreads.waitUntilRestored())
            // The slow but reading peer is still attached.
            #expect(try daemon.client().status().vms.map(\.name) == ["slow"])
            #expect(threads.live.map(\.cpus) == TestTopology.pinnedCPUs)
        }
    }
}

extension DaemonTests {
    @Suite struct Limits {
        /// The VMM dies: its threads are gone and its socket closes. The
        /// daemon detaches quietly (ESRCH is not a failure) and forgets the
        /// journal records.
        @Test func vmmCrash() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let threads = try VCPUThreads()
            var client: VCPUFreqClient? = try daemon.client()
            let shared = try hintEverything(client!, threads, name: "crasher")
            _ = shared
            threads.stop(0)
            threads.stop(1)
            client = nil
            #expect(eventually { daemon.journalEntries().isEmpty })
            #expect(try daemon.client().status().vms.isEmpty)
            #expect(!daemon.log.contains("cannot restore thread"))
            #expect(daemon.log.contains("restored=0"), "nothing left to restore")
        }

        /// --max-connections: one more connection gets ERROR resources and
        /// is closed; the others carry on.
        @Test func connectionLimit() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), arguments: ["--max-connections", "3"])
            let firstClient = try daemon.client()
            // The readiness probe's connection is gone before the count matters.
            #expect(eventually { (try? firstClient.status().daemon.connections) == 1 })
            let held = [firstClient, try daemon.client(), try daemon.client()]
            let extra = try RawPeer(daemon.socketPath)
            guard case .message(let header, .error(.resources, 0, let text), _) = try extra.receive() else {
                Issue.record("expected ERROR resources")
                return
            }
            #expect(header.id == 0)
            #expect(text.contains("3 connections"))
            #expect(try extra.receive() == .closed)
            #expect(throws: ClientError.self) { try VCPUFreqClient(socketPath: daemon.socketPath, clientName: "fourth", timeoutMilliseconds: 2000) }
            for client in held { #expect(try client.status().daemon.connections == 3) }
        }

        /// A VM of 300 vCPUs: its doorbells come in two DOORBELLS messages
        /// (240 per message) and the status document in several STATUS_OK
        /// chunks. A dry run: no journal to write for 300 threads.
        @Test func largeVMChunks() throws {
            let daemon = try Daemon(
                topology: TestTopology.toml([TestTopology.Profile(name: "big", kickMode: "always", vcpus: 300)]),
                arguments: ["--dry-run"], record: false, metrics: false)
            let vm = try AttachedVM(daemon: daemon, profile: "big", vcpus: 300)
            let shared = try vm.mapShared()
            #expect(shared.shared.layout.doorbellMessages == 2)
            #expect(shared.shared.doorbells.count == 300)
            #expect(Set(shared.shared.doorbells.map(\.rawValue)).count == 300)
            // Doorbell 299 (in the second message) wakes slot 299 only.
            let last = try shared.publish(slot: 299, utilization: 299, flags: [.utilValid])
            #expect(last.kicked)
            #expect(eventually { shared.guest.acknowledgedSequence(slot: 299) == last.sequence })
            #expect(shared.guest.acknowledgedSequence(slot: 298) == 0)

            let json = try vm.client.statusJSON()
            #expect(json.count > 65536 - 24, "the document needs more than one chunk (\(json.count) bytes)")
            let status = try vm.client.status()
            #expect(status.vms.first?.vcpus.count == 300)
            #expect(status.vms.first?.vcpus[299].utilMin == 299)
        }
    }
}
