import Foundation
import Glibc
import SystemPackage
import Testing
@testable import VCPUFreqLinux

@Suite struct SeqPacketTests {
    /// Descriptors of this process whose /proc/self/fd link names `marker`
    /// (a unique memfd name): race-free even while other tests open files.
    func descriptors(named marker: String) -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return entries.filter { entry in
            ((try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + entry)) ?? "")
                .contains(marker)
        }.count
    }

    func uniqueMarker() -> String { "vcpufreq-fd-\(UInt32.random(in: 0...UInt32.max))" }

    func receive(_ connection: SeqPacketConnection, capacity: Int = 64, fds: Int) throws -> ([UInt8], ReceivedMessage) {
        var buffer = [UInt8](repeating: 0, count: capacity)
        let result = try buffer.withUnsafeMutableBytes { bytes in
            Result { () throws(Errno) in try connection.receive(into: bytes, maximumDescriptors: fds) }
        }.get()
        return (buffer, result)
    }

    @Test func listenConnectAcceptAndExchange() throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/vcpufreq.sock"
        // A stale socket file from a "crashed" daemon is replaced.
        do { _ = try SeqPacketListener(path: path) }
        let stale = try SeqPacketListener(path: path + ".old")
        _ = stale
        #expect(FileManager.default.fileExists(atPath: path) == false)  // deinit removed it
        let listener = try SeqPacketListener(path: path, access: .init(mode: 0o600))
        var info = stat()
        #expect(lstat(path, &info) == 0)
        #expect(info.st_mode & 0o777 == 0o600)
        #expect(info.st_mode & S_IFMT == S_IFSOCK)

        #expect(try listener.accept() == nil)
        let client = try SeqPacketConnection.connect(to: path)
        let server = try #require(try listener.accept())
        #expect(server.nonblocking)

        let credentials = try server.peerCredentials()
        #expect(credentials == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))

        try client.send([1, 2, 3, 4, 5])
        try client.send([9])
        let (first, firstResult) = try receive(server, fds: 0)
        guard case .message(5, let none) = firstResult else {
            Issue.record("expected a 5-byte message, got \(firstResult)")
            return
        }
        #expect(none.isEmpty)
        #expect(Array(first.prefix(5)) == [1, 2, 3, 4, 5])
        // Boundaries are kept: the second message comes alone.
        let (second, secondResult) = try receive(server, fds: 0)
        guard case .message(1, _) = secondResult else {
            Issue.record("expected a 1-byte message, got \(secondResult)")
            return
        }
        #expect(second[0] == 9)
        guard case .wouldBlock = try receive(server, fds: 0).1 else {
            Issue.record("nonblocking receive with nothing queued should say so")
            return
        }
        withExtendedLifetime(client) {}
    }

    @Test func listenerDoesNotDeleteARegularFile() throws {
        let directory = temporaryDirectory("sock")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/not-a-socket"
        #expect(FileManager.default.createFile(atPath: path, contents: Data([1])))
        #expect(throws: Errno.addressInUse) { try SeqPacketListener(path: path) }
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test func pathTooLongForSunPath() {
        #expect(throws: Errno.fileNameTooLong) { try SeqPacketListener(path: "/tmp/" + String(repeating: "x", count: 120)) }
    }

    @Test func descriptorsTravelAndWork() throws {
        let marker = uniqueMarker()
        let (left, right) = try SeqPacketConnection.pair()
        let file = try MemoryFile(name: marker, byteCount: 4096)
        let event = try EventFD()
        try left.send([42], descriptors: [file.descriptor, event.descriptor])
        let (_, result) = try receive(right, fds: 4)
        guard case .message(1, let received) = result else {
            Issue.record("expected a message, got \(result)")
            return
        }
        #expect(received.count == 2)
        #expect(descriptors(named: marker) == 2)
        // The received memfd maps the same memory; the eventfd is the same counter.
        let mine = try file.map()
        let theirs = try MappedRegion(mapping: received[0].rawDescriptor, byteCount: 4096)
        mine.bytes[100] = 0x5a
        #expect(theirs.bytes[100] == 0x5a)
        try event.signal(3)
        var value: UInt64 = 0
        #expect(read(received[1].rawDescriptor.rawValue, &value, 8) == 8)
        #expect(value == 3)
        // Received descriptors are close-on-exec.
        #expect(fcntl(received[0].rawDescriptor.rawValue, F_GETFD) & FD_CLOEXEC != 0)
    }

    /// More descriptors than the receiver allows: a distinct result, and
    /// none of them left open in this process.
    @Test(arguments: [(5, 1), (5, 2), (3, 0), (8, 3)])
    func tooManyDescriptorsAreReportedAndNotLeaked(sent: Int, allowed: Int) throws {
        let marker = uniqueMarker()
        let (left, right) = try SeqPacketConnection.pair()
        do {
            let files = try (0..<sent).map { _ in try MemoryFile(name: marker, byteCount: 4096) }
            try left.send([7, 7], descriptors: files.map(\.descriptor))
        }
        #expect(descriptors(named: marker) == 0)  // the senders' copies are closed; the kernel holds them in flight
        do {
            let (_, result) = try receive(right, fds: allowed)
            guard case .descriptorsTruncated(2, let received) = result else {
                Issue.record("expected MSG_CTRUNC, got \(result)")
                return
            }
            #expect(received.count <= allowed)
            #expect(descriptors(named: marker) == received.count)
        }
        #expect(descriptors(named: marker) == 0)
    }

    @Test func longMessageIsReportedTruncated() throws {
        let (left, right) = try SeqPacketConnection.pair()
        try left.send(Array(repeating: 3, count: 100))
        let (buffer, result) = try receive(right, capacity: 16, fds: 0)
        guard case .dataTruncated(16, _) = result else {
            Issue.record("expected MSG_TRUNC, got \(result)")
            return
        }
        #expect(buffer.allSatisfy { $0 == 3 })
    }

    @Test func peerClosingIsEndOfStream() throws {
        var (left, right): (SeqPacketConnection?, SeqPacketConnection) = try SeqPacketConnection.pair()
        _ = left
        left = nil
        guard case .endOfStream = try receive(right, fds: 2).1 else {
            Issue.record("expected end of stream")
            return
        }
    }

    @Test func sendRefusesMoreThanTheKernelLimit() throws {
        let (left, right) = try SeqPacketConnection.pair()
        let event = try EventFD()
        let many = Array(repeating: event.descriptor, count: SeqPacketConnection.maximumDescriptors + 1)
        #expect(throws: Errno.invalidArgument) { try left.send([1], descriptors: many) }
        withExtendedLifetime(right) {}
    }
}
