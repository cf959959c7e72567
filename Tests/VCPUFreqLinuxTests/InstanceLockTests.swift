import Foundation
import Glibc
import SystemPackage
import Testing
@testable import VCPUFreqLinux

/// The single-instance locks, on real files: flock(2) locks belong to an
/// open file description, so two acquisitions in one process contend like
/// two daemons do, and /proc/locks names this process as the holder.
@Suite struct InstanceLockTests {
    @Test func secondAcquisitionIsRefusedWithTheKernelsPidAndTheState() throws {
        let directory = temporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/daemon.lock"
        let first = try InstanceLock.acquire(path, kind: .file)
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "\(getpid()) starting".padding(toLength: 23, withPad: " ", startingAt: 0) + "\n")
        first.announce(.serving)
        let line = try String(contentsOfFile: path, encoding: .utf8)
        #expect(line.utf8.count == 24 && line.hasPrefix("\(getpid()) serving "))

        #expect(throws: InstanceLockError.held(path: path, holder: LockHolder(pid: getpid(), state: .serving))) {
            try InstanceLock.acquire(path, kind: .file, stoppingWaitMilliseconds: 1000)
        }
        // The refused attempt changed nothing.
        #expect(try String(contentsOfFile: path, encoding: .utf8) == line)
        first.release()
        #expect(!first.isHeld)
        let again = try InstanceLock.acquire(path, kind: .file)
        #expect(again.isHeld)
    }

    @Test func aStoppingHolderIsWaitedFor() throws {
        let directory = temporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/daemon.lock"
        let holder = try InstanceLock.acquire(path, kind: .file)
        holder.announce(.stopping)
        // Only the other thread touches the lock from here on.
        nonisolated(unsafe) let stopping = holder
        let releaser = Thread {
            usleep(150_000)
            stopping.release()
        }
        releaser.start()
        let start = Date()
        var waits: [LockHolder] = []
        let next = try InstanceLock.acquire(path, kind: .file, stoppingWaitMilliseconds: 10_000) { waits.append($0) }
        #expect(next.isHeld)
        #expect(Date().timeIntervalSince(start) >= 0.1)
        #expect(waits == [LockHolder(pid: getpid(), state: .stopping)])
        #expect(try String(contentsOfFile: path, encoding: .utf8).hasPrefix("\(getpid()) starting"))
    }

    @Test func aHolderThatDoesNotStopInTimeIsReported() throws {
        let directory = temporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/daemon.lock"
        let holder = try InstanceLock.acquire(path, kind: .file)
        holder.announce(.stopping)
        do {
            _ = try InstanceLock.acquire(path, kind: .file, stoppingWaitMilliseconds: 50)
            Issue.record("acquired a held lock")
        } catch {
            guard case .stillStopping(path, LockHolder(pid: getpid(), state: .stopping), let waited) = error else {
                Issue.record("\(error)")
                return
            }
            #expect(waited >= 50)
            #expect("\(error)".contains("is still stopping after") && "\(error)".contains(path))
        }
    }

    @Test func directoriesLockAsThemselves() throws {
        let directory = temporaryDirectory("lockdir")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let lock = try InstanceLock.acquire(directory, kind: .directory)
        lock.announce(.serving)  // nothing to write in a directory
        #expect((try FileManager.default.contentsOfDirectory(atPath: directory)).isEmpty)
        #expect(throws: InstanceLockError.held(path: directory, holder: LockHolder(pid: getpid(), state: nil))) {
            try InstanceLock.acquire(directory, kind: .directory)
        }
    }

    @Test func aSymlinkIsNeverWrittenThrough() throws {
        let directory = temporaryDirectory("lock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let target = directory + "/precious"
        #expect(FileManager.default.createFile(atPath: target, contents: Data("keep".utf8)))
        #expect(symlink(target, directory + "/daemon.lock") == 0)
        #expect(throws: InstanceLockError.failed(path: directory + "/daemon.lock", operation: "open", errno: .tooManySymbolicLinkLevels)) {
            try InstanceLock.acquire(directory + "/daemon.lock", kind: .file)
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "keep")
    }

    @Test func missingDirectoryNamesThePath() {
        #expect(throws: InstanceLockError.failed(path: "/nonexistent-vcpufreq/x.lock", operation: "open", errno: .noSuchFileOrDirectory)) {
            try InstanceLock.acquire("/nonexistent-vcpufreq/x.lock", kind: .file)
        }
    }

    @Test(arguments: [
        ("123 serving          \n", Int32(123), InstanceLock.State.serving),
        ("9 stopping", 9, .stopping),
        ("4194304 starting", 4_194_304, .starting),
        ("", nil, nil),
        ("abc serving", nil, .serving),
        ("0 serving", nil, .serving),
        ("-5 stopping", nil, .stopping),
        ("77 sleeping", 77, nil),
        ("77", 77, nil),
    ] as [(String, Int32?, InstanceLock.State?)])
    func lineParsing(_ text: String, _ pid: Int32?, _ state: InstanceLock.State?) {
        let parsed = LockHolder.parse(line: text)
        #expect(parsed.pid == pid && parsed.state == state)
    }

    @Test func lineIsFixedWidth() {
        for state in InstanceLock.State.allCases {
            for pid: Int32 in [1, 4_194_304, Int32.max] {
                let line = InstanceLock.line(pid: pid, state: state)
                #expect(line.count == InstanceLock.lineLength && line.last == UInt8(ascii: "\n"))
                #expect(LockHolder.parse(line: String(decoding: line, as: UTF8.self)) == (pid, state))
            }
        }
    }

    @Test func holderDescriptions() {
        #expect("\(LockHolder(pid: 12, state: .serving))" == "pid 12, serving")
        #expect("\(LockHolder(pid: nil, state: nil))" == "pid unknown")
        #expect("\(LockHolder(pid: 12, state: .serving, stopSignalPending: true))" == "pid 12, stop signal pending")
        #expect(LockHolder(pid: 12, state: .serving, stopSignalPending: true).isStopping)
        #expect(LockHolder(pid: 12, state: .stopping).isStopping)
        #expect(!LockHolder(pid: 12, state: .starting).isStopping)
    }

    /// /proc/locks as fs/locks.c prints it: hex major:minor, decimal inode;
    /// waiters (`->`), POSIX locks, read locks and other files do not count.
    @Test func procLocksParsing() {
        let text = """
            1: POSIX  ADVISORY  WRITE 700 00:28:4242 0 EOF
            2: FLOCK  ADVISORY  READ 701 00:28:4242 0 EOF
            3: FLOCK  ADVISORY  WRITE 702 00:1c:4242 0 EOF
            4: FLOCK  ADVISORY  WRITE 16219 00:28:4242 0 EOF
            4: -> FLOCK  ADVISORY  WRITE 999 00:28:4242 0 EOF
            5: FLOCK  ADVISORY  WRITE 703 103:02:77 0 EOF
            """
        let device = FileIdentity.Device(major: 0, minor: 0x28)
        #expect(ProcFS.parseFlockHolder(locks: text, device: device, inode: 4242) == 16219)
        #expect(ProcFS.parseFlockHolder(locks: text, device: .init(major: 0x103, minor: 2), inode: 77) == 703)
        #expect(ProcFS.parseFlockHolder(locks: text, device: device, inode: 4243) == nil)
        #expect(ProcFS.parseFlockHolder(locks: "", device: device, inode: 4242) == nil)
    }

    @Test func pendingSignalsParsing() {
        let status = "Name:\tvcpufreq\nSigPnd:\t0000000000000000\nShdPnd:\t0000000000004000\nSigBlk:\t0000000000004003\n"
        #expect(ProcFS.parsePendingSignals(status: status) == 1 << 14)
        #expect(ProcFS.parsePendingSignals(status: "SigPnd:\t0000000000000002\nShdPnd:\t0000000000000000\n") == 2)
        #expect(ProcFS.parsePendingSignals(status: "Name:\tx\n") == nil)
        #expect(1 << 14 & InstanceLock.stopSignalMask != 0 && 2 & InstanceLock.stopSignalMask != 0)
        #expect(1 & InstanceLock.stopSignalMask == 0)  // SIGHUP does not stop the daemon
    }

    /// A blocked signal sent and not read yet shows in the kernel's pending
    /// set (what a starting daemon reads of a stopping one) and in
    /// sigpending. Sent to this thread only (pthread_kill), with SIGUSR2
    /// blocked here: no other thread of the test runner can take it.
    @Test func pendingStopSignalIsVisible() throws {
        let usr2 = SignalNumber(rawValue: SIGUSR2)
        let signals = try SignalFD(signals: [usr2])
        #expect(!signals.isPending(usr2))
        #expect(pthread_kill(pthread_self(), SIGUSR2) == 0)
        #expect(signals.isPending(usr2))
        // This thread's status file: /proc/<pid>/task/<tid>/status.
        let thread = ProcFS(root: "/proc/\(getpid())/task")
        #expect((thread.pendingSignals(ofProcess: system_gettid()) ?? 0) & (1 << (UInt64(SIGUSR2) - 1)) != 0)
        #expect(try signals.next() == usr2)
        #expect(!signals.isPending(usr2))
    }
}
