import Foundation
import Glibc
import SystemPackage
import Testing
@testable import VCPUFreqLinux

@Suite struct EventDescriptorTests {
    @Test func eventfdCountsAndCoalesces() throws {
        let event = try EventFD()
        #expect(try event.drain() == nil)
        try event.signal()
        try event.signal(41)
        #expect(try event.drain() == 42)
        #expect(try event.drain() == nil)
    }

    @Test func epollReportsTokensOfReadyDescriptors() throws {
        let epoll = try Epoll()
        let first = try EventFD()
        let second = try EventFD()
        try epoll.add(first.descriptor, events: .readable, token: 0xdead_beef_0000_0001)
        try epoll.add(second.descriptor, events: .readable, token: 7)
        let buffer = EpollReadyBuffer(capacity: 8)
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 0) == 0)

        try second.signal()
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 1000) == 1)
        #expect(buffer[0] == EpollReady(token: 7, events: .readable))

        try first.signal()
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 1000) == 2)
        let tokens = Set((0..<buffer.count).map { buffer[$0].token })
        #expect(tokens == [7, 0xdead_beef_0000_0001])

        // Re-registered with another token; then removed.
        try epoll.modify(first.descriptor, events: .readable, token: 99)
        _ = try second.drain()
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 1000) == 1)
        #expect(buffer[0].token == 99)
        try epoll.remove(first.descriptor)
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 0) == 0)
    }

    @Test func epollBufferIsClampedToTheShimBatch() {
        #expect(EpollReadyBuffer(capacity: 0).capacity == 1)
        #expect(EpollReadyBuffer(capacity: 100_000).capacity == EpollReadyBuffer.maximumCapacity)
    }

    @Test func timerfdFiresAtAnAbsoluteDeadlineAndCanBeDisarmed() throws {
        let timer = try TimerFD()
        let epoll = try Epoll()
        try epoll.add(timer.descriptor, events: .readable, token: 1)
        let buffer = EpollReadyBuffer(capacity: 1)

        let start = MonotonicClock.nowNanoseconds()
        try timer.arm(atNanoseconds: start + 20_000_000)
        #expect(try timer.expirations() == nil)
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 2000) == 1)
        #expect(MonotonicClock.nowNanoseconds() >= start + 20_000_000)
        #expect(try timer.expirations() == 1)

        try timer.arm(atNanoseconds: MonotonicClock.nowNanoseconds() + 30_000_000)
        try timer.disarm()
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 80) == 0)
        #expect(try timer.expirations() == nil)

        // A deadline in the past fires at once.
        try timer.arm(atNanoseconds: 0)
        #expect(try epoll.wait(into: buffer, timeoutMilliseconds: 1000) == 1)
    }

    @Test func monotonicClockAdvances() {
        let first = MonotonicClock.nowNanoseconds()
        usleep(1000)
        #expect(MonotonicClock.nowNanoseconds() - first >= 1_000_000)
    }

    /// Runs on a thread of its own: blocking signals changes that thread's
    /// mask, which must not be a shared test-pool thread.
    @Test func signalfdTurnsABlockedSignalIntoAnEvent() throws {
        let outcome = OutcomeBox()
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            defer { done.signal() }
            do {
                let signals = try SignalFD(signals: [.hangUp, .terminate, .interrupt])
                outcome.before = try signals.next()
                // Thread-directed, so no other thread of the test process sees it.
                pthread_kill(pthread_self(), SIGHUP)
                outcome.after = try signals.next()
                outcome.drained = try signals.next()
            } catch {
                outcome.error = error
            }
        }
        thread.start()
        done.wait()
        #expect(outcome.error == nil)
        #expect(outcome.before == nil)
        #expect(outcome.after == .hangUp)
        #expect(outcome.drained == nil)
    }

    final class OutcomeBox: @unchecked Sendable {
        var before: SignalNumber?
        var after: SignalNumber?
        var drained: SignalNumber?
        var error: (any Error)?
    }

    @Test func memoryFileMappingsShareMemory() throws {
        let file = try MemoryFile(name: "vcpufreq-test", byteCount: 4096)
        let writer = try file.map()
        let reader = try file.map(writable: false)
        #expect(writer.baseAddress != reader.baseAddress)
        writer.bytes.storeBytes(of: UInt64(0x1122_3344_5566_7788), toByteOffset: 64, as: UInt64.self)
        #expect(reader.bytes.load(fromByteOffset: 64, as: UInt64.self) == 0x1122_3344_5566_7788)
        // Another mapping of the same descriptor (what the VMM does) sees it too.
        let again = try MappedRegion(mapping: file.descriptor, byteCount: 4096)
        #expect(again.bytes[64] == 0x88)
        var info = stat()
        #expect(fstat(file.descriptor.rawValue, &info) == 0)
        #expect(info.st_size == 4096)
    }

    /// Other tests open descriptors concurrently, so counting /proc/self/fd
    /// would race; the hook sees exactly which descriptors deinit closes.
    @Test func ownersCloseTheirDescriptors() throws {
        let hook = SyscallHook()
        let opened: [Int32] = try SyscallHook.withHook(hook) {
            let source = try EventFD()
            let objects: [(AnyObject, Int32)] = [
                (try EventFD(), -1), (try Epoll(), -1), (try TimerFD(), -1),
                (try MemoryFile(name: "x", byteCount: 4096), -1),
                (OwnedDescriptor(taking: try source.descriptor.duplicate()), -1),
            ]
            var fds: [Int32] = []
            for (object, _) in objects {
                switch object {
                case let event as EventFD: fds.append(event.descriptor.rawValue)
                case let epoll as Epoll: fds.append(epoll.descriptor.rawValue)
                case let timer as TimerFD: fds.append(timer.descriptor.rawValue)
                case let file as MemoryFile: fds.append(file.descriptor.rawValue)
                case let owned as OwnedDescriptor: fds.append(owned.rawDescriptor.rawValue)
                default: break
                }
            }
            fds.append(source.descriptor.rawValue)
            return fds
        }
        let closed = hook.calls(named: "close").map { Int32($0.arguments[0]) }
        #expect(Set(closed) == Set(opened))
        #expect(closed.count == opened.count)
    }

    @Test func releasedDescriptorIsNotClosed() throws {
        let source = try EventFD()
        let owned = OwnedDescriptor(taking: try source.descriptor.duplicate())
        let raw = owned.release()
        #expect(!owned.isOpen)
        #expect(fcntl(raw.rawValue, F_GETFD) >= 0)
        try raw.close()
    }
}
