import Foundation
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

/// Every wrapper's error path, through the debug SyscallHook: the call
/// fails with the injected errno before reaching the kernel, so these run
/// without root and without the kernel features.
@Suite struct SyscallInjectionTests {
    /// One public wrapper and the raw syscall it makes.
    enum Wrapper: String, CaseIterable, Sendable {
        case setAttributes, attributes, setAffinity, affinity, nice, setNice
        case eventfdCreate, eventfdSignal, eventfdDrain
        case epollCreate, epollAdd, epollModify, epollRemove, epollWait
        case timerfdCreate, timerfdArm, timerfdDisarm, timerfdRead
        case signalfdBlock, signalfdCreate
        case memfdCreate, memfdResize, mmap
        case socketCreate, bind, listen, connect, accept, send, receive, peerCredentials
        case journalFsync, journalRename

        var syscall: String {
            switch self {
            case .setAttributes: return "sched_setattr"
            case .attributes: return "sched_getattr"
            case .setAffinity: return "sched_setaffinity"
            case .affinity: return "sched_getaffinity"
            case .nice: return "getpriority"
            case .setNice: return "setpriority"
            case .eventfdCreate: return "eventfd"
            case .eventfdSignal: return "write"
            case .eventfdDrain, .timerfdRead: return "read"
            case .epollCreate: return "epoll_create1"
            case .epollAdd, .epollModify, .epollRemove: return "epoll_ctl"
            case .epollWait: return "epoll_wait"
            case .timerfdCreate: return "timerfd_create"
            case .timerfdArm, .timerfdDisarm: return "timerfd_settime"
            case .signalfdBlock: return "pthread_sigmask"
            case .signalfdCreate: return "signalfd"
            case .memfdCreate: return "memfd_create"
            case .memfdResize: return "ftruncate"
            case .mmap: return "mmap"
            case .socketCreate: return "socket"
            case .bind: return "bind"
            case .listen: return "listen"
            case .connect: return "connect"
            case .accept: return "accept4"
            case .send: return "sendmsg"
            case .receive: return "recvmsg"
            case .peerCredentials: return "getsockopt"
            case .journalFsync: return "fsync"
            case .journalRename: return "rename"
            }
        }

        /// Runs the wrapper against objects made before the hook fires
        /// (their own syscalls have other names, so they pass through).
        func run(scratch: Int32, directory: String) throws(Errno) {
            switch self {
            case .setAttributes: try ThreadScheduling.setAttributes(SchedAttr(size: 48), of: scratch)
            case .attributes: _ = try ThreadScheduling.attributes(of: scratch)
            case .setAffinity: try ThreadScheduling.setAffinity(CPUList([0]), of: scratch)
            case .affinity: _ = try ThreadScheduling.affinity(of: scratch)
            case .nice: _ = try ThreadScheduling.nice(of: scratch)
            case .setNice: try ThreadScheduling.setNice(0, of: scratch)
            case .eventfdCreate: _ = try EventFD()
            case .eventfdSignal: try EventFD().signal()
            case .eventfdDrain:
                let event = try EventFD(initialValue: 1)
                _ = try event.drain()
            case .epollCreate: _ = try Epoll()
            case .epollAdd: try Epoll().add(EventFD().descriptor, events: .readable, token: 1)
            case .epollModify: try Epoll().modify(EventFD().descriptor, events: .readable, token: 1)
            case .epollRemove: try Epoll().remove(EventFD().descriptor)
            case .epollWait: try Epoll().wait(into: EpollReadyBuffer(capacity: 4), timeoutMilliseconds: 0)
            case .timerfdCreate: _ = try TimerFD()
            case .timerfdArm: try TimerFD().arm(atNanoseconds: 1)
            case .timerfdDisarm: try TimerFD().disarm()
            case .timerfdRead:
                let timer = try TimerFD()
                _ = try timer.expirations()
            case .signalfdBlock, .signalfdCreate: _ = try SignalFD(signals: [SignalNumber(rawValue: 10)])
            case .memfdCreate, .memfdResize: _ = try MemoryFile(name: "t", byteCount: 4096)
            case .mmap: _ = try MemoryFile(name: "t", byteCount: 4096).map()
            case .socketCreate, .bind, .listen:
                _ = try SeqPacketListener(path: directory + "/\(rawValue).sock")
            case .connect: _ = try SeqPacketConnection.connect(to: directory + "/none.sock")
            case .accept: _ = try SeqPacketListener(path: directory + "/accept.sock").accept()
            case .send:
                let (sender, receiver) = try SeqPacketConnection.pair()
                try withExtendedLifetime(receiver) { () throws(Errno) in try sender.send([1]) }
            case .receive:
                var buffer = [UInt8](repeating: 0, count: 8)
                let result = try buffer.withUnsafeMutableBytes { bytes in
                    Result { () throws(Errno) in try SeqPacketConnection.pair().0.receive(into: bytes) }
                }.get()
                _ = result
            case .peerCredentials: _ = try SeqPacketConnection.pair().0.peerCredentials()
            case .journalFsync, .journalRename:
                let journal = try RestoreJournal(stateDirectory: directory + "/state")
                try journal.record(
                    AttachedThread(
                        target: ThreadTarget(tid: 1, pid: 1, vm: "vm", vcpu: 0, domain: 0), startTime: 1,
                        snapshot: ThreadSnapshot(), facets: []))
            }
        }
    }

    static let injected: [Errno] = [.notPermitted, .noSuchProcess, .notSupported]

    @Test(arguments: Wrapper.allCases, injected)
    func injectedErrorIsThrown(wrapper: Wrapper, error: Errno) throws {
        let scratch = try ScratchThread()
        let directory = temporaryDirectory("inject")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let hook = SyscallHook()
        hook.on(wrapper.syscall, times: 1, .fail(error))
        let thrown = SyscallHook.withHook(hook) { () -> Errno? in
            do throws(Errno) {
                try wrapper.run(scratch: scratch.tid, directory: directory)
                return nil
            } catch {
                return error
            }
        }
        #expect(thrown == error, "\(wrapper) did not surface \(error)")
        #expect(hook.calls(named: wrapper.syscall).count >= 1)
    }

    /// EINTR is retried in the one helper: the wrapper succeeds, and the
    /// kernel saw the call twice (once interrupted, once for real).
    @Test(arguments: [Wrapper.setAffinity, .affinity, .nice, .attributes, .eventfdSignal, .epollWait, .timerfdArm, .send])
    func interruptedCallIsRetried(wrapper: Wrapper) throws {
        let scratch = try ScratchThread()
        let directory = temporaryDirectory("eintr")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let hook = SyscallHook()
        hook.on(wrapper.syscall, times: 1, .fail(.interrupted))
        try SyscallHook.withHook(hook) { try wrapper.run(scratch: scratch.tid, directory: directory) }
        #expect(hook.calls(named: wrapper.syscall).count == 2)
    }

    @Test func interruptIsThrownWhenRetryIsOff() throws {
        let scratch = try ScratchThread()
        let hook = SyscallHook()
        hook.on("getpriority", times: 1, .fail(.interrupted))
        #expect(throws: Errno.interrupted) {
            try SyscallHook.withHook(hook) { try ThreadScheduling.nice(of: scratch.tid, retryOnInterrupt: false) }
        }
        #expect(hook.calls(named: "getpriority").count == 1)
    }

    @Test func closeIsNeverRetried() throws {
        let event = try EventFD()
        let duplicate = try event.descriptor.duplicate()
        let owned = OwnedDescriptor(taking: duplicate)
        let hook = SyscallHook()
        hook.on("close", times: 1, .fail(.interrupted))
        #expect(throws: Errno.interrupted) { try SyscallHook.withHook(hook) { try owned.close() } }
        #expect(hook.calls(named: "close").count == 1)
        #expect(!owned.isOpen)
        try duplicate.close()  // the injected failure never reached the kernel
    }

    @Test func hookRecordsArgumentsAndCanFakeSuccess() throws {
        let hook = SyscallHook()
        hook.on("setpriority", .succeed())
        try SyscallHook.withHook(hook) {
            try ThreadScheduling.setNice(-7, of: 4242)
            try ThreadScheduling.setNice(3, of: 4243)
        }
        #expect(hook.calls == [
            .init(name: "setpriority", arguments: [4242, -7], bytes: []),
            .init(name: "setpriority", arguments: [4243, 3], bytes: []),
        ])
    }

    @Test func withoutAHookNothingIsRecordedAndTheKernelAnswers() {
        // No such thread: the real kernel says ESRCH.
        #expect(throws: Errno.noSuchProcess) { try ThreadScheduling.nice(of: Int32.max) }
    }
}
