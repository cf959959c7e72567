import Foundation
import Glibc
import Testing
import VCPUFreqLinux

/// strace attached to a running daemon: the syscalls it makes between
/// `init` (once strace reports the attach) and `stop()`.
final class StraceSession {
    let process = Process()
    let outputPath: String
    let errorPath: String

    init(pid: Int32, directory: String) throws {
        let run = UInt32.random(in: 0...UInt32.max)
        outputPath = directory + "/strace-\(run).txt"
        errorPath = directory + "/strace-\(run).err"
        _ = FileManager.default.createFile(atPath: errorPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        process.arguments = ["-f", "-p", "\(pid)", "-o", outputPath]
        process.standardError = FileHandle(forWritingAtPath: errorPath)
        process.standardOutput = FileHandle.nullDevice
        try runWithDefaultSignalMask(process)
        let attached = eventually(timeoutSeconds: 10) {
            ((try? String(contentsOfFile: errorPath, encoding: .utf8)) ?? "").contains("attached")
        }
        guard attached else {
            kill(process.processIdentifier, SIGKILL)
            throw DaemonError(description: "strace did not attach to \(pid)")
        }
        // Let the attach's own interruption of epoll_wait settle.
        usleep(20_000)
    }

    /// Detaches strace; returns each syscall's name, in order.
    func stop() -> [String] {
        kill(process.processIdentifier, SIGINT)
        process.waitUntilExit()
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        var names: [String] = []
        for line in text.split(separator: "\n") {
            // "<pid>  name(args) = result", or "<pid>  <... name resumed> ..." (already counted).
            var rest = line.drop { $0.isNumber }.drop { $0 == " " }
            if rest.hasPrefix("<...") || rest.hasPrefix("+++") || rest.hasPrefix("---") { continue }
            rest = rest.prefix { $0 != "(" }
            if !rest.isEmpty { names.append(String(rest)) }
        }
        return names
    }
}

extension DaemonTests {
    @Suite(.enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/strace"), "needs strace"))
    struct SyscallEconomy {
        /// The daemon's side of requests that change no hint: socket I/O and
        /// epoll only — no sysfs read, no sched_* call, no eventfd read (the
        /// doorbells are edge-triggered). A change costs one actuator call.
        @Test func aSyscallOnlyWhenTheHintChanges() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), metrics: false)
            let vm = try AttachedVM(daemon: daemon)
            let shared = try vm.mapShared()
            let tid = vm.threads.tids[0]
            let first = try shared.publish(slot: 0, utilization: 600, flags: [.utilValid, .latencySensitive])
            #expect(eventually { shared.guest.acknowledgedSequence(slot: 0) == first.sequence })
            #expect(eventually { LiveAttributes.slice(tid) == 400_000 })
            try vm.client.write(vcpu: 1, offset: Offset.upstream(1, Offset.setPerf), value: 1_500_000, sync: true)

            let quiet = try StraceSession(pid: daemon.pid, directory: daemon.directory)
            for _ in 0..<100 { _ = try vm.client.read(vcpu: 0, offset: Offset.upstream(0, Offset.curPerf)) }
            for _ in 0..<100 { try vm.client.write(vcpu: 1, offset: Offset.upstream(1, Offset.setPerf), value: 1_500_000) }
            try vm.client.write(vcpu: 1, offset: Offset.upstream(1, Offset.setPerf), value: 1_500_000, sync: true)
            for _ in 0..<50 {
                let again = try shared.publish(slot: 0, utilization: 600, flags: [.utilValid, .latencySensitive])
                #expect(again.kicked)
                #expect(eventually { shared.guest.acknowledgedSequence(slot: 0) == again.sequence })
            }
            let calls = quiet.stop()
            // A ThreadSanitizer build (the daemon is built as this test is)
            // runs TSan's background thread in the daemon: it sleeps and
            // reads the clock, nothing else.
            let sanitizerRuntime: Set<String> = ThreadSanitizerAnnotations.active ? ["nanosleep", "gettimeofday", "clock_nanosleep"] : []
            #expect(Set(calls).isSubset(of: Set(["epoll_wait", "recvmsg", "sendmsg", "restart_syscall"]).union(sanitizerRuntime)), "\(Set(calls))")
            #expect(calls.filter { $0 == "sendmsg" }.count == 101, "100 READ_OK and one WRITE_OK")
            // Every message is read with one recvmsg, plus one EAGAIN per wake-up at most.
            #expect(calls.filter { $0 == "recvmsg" }.count >= 201)

            let change = try StraceSession(pid: daemon.pid, directory: daemon.directory)
            let plain = try shared.publish(slot: 0, utilization: 600, flags: [.utilValid])
            #expect(eventually { shared.guest.acknowledgedSequence(slot: 0) == plain.sequence })
            #expect(eventually { LiveAttributes.slice(tid) == vm.threads.originals[0].sliceNanoseconds })
            usleep(20_000)
            let changed = change.stop()
            #expect(changed.filter { $0 == "sched_setattr" }.count == 1, "\(changed)")
            #expect(!changed.contains("sched_setaffinity") && !changed.contains("setpriority"))
            #expect(!changed.contains("openat"), "no file is opened for a hint")
        }
    }
}
