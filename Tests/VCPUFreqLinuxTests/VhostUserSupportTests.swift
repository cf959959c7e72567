import Foundation
import Glibc
import SystemPackage
import Testing
@testable import VCPUFreqLinux

/// What the daemon's vhost-user side needs from the OS: stream sockets that
/// carry descriptors, the checks on a received memory file, and the vCPU
/// threads of an unmodified VMM found by name.
@Suite struct VhostUserSupportTests {
    // MARK: vCPU thread names

    @Test(arguments: [
        ("CPU 0/KVM", 0), ("CPU 7/TCG", 7), ("CPU 15/HVF", 15), ("CPU 1000/KVM", 1000), ("CPU 3/KVM\n", 3),
        ("crosvm_vcpu0", 0), ("crosvm_vcpu12", 12),
    ])
    func vcpuNamesAreRecognised(name: String, index: Int) {
        #expect(VCPUThreadName.vcpuIndex(Substring(name)) == index)
    }

    @Test(arguments: [
        "CPU /KVM", "CPU 1", "CPU 1/", "CPU -1/KVM", "CPU +1/KVM", "CPU 1 /KVM", "CPU 1/KVM2", "CPU 123456/KVM", "cpu 1/KVM",
        "crosvm_vcpu", "crosvm_vcpu-1", "crosvm_vcpu1a", "qemu-system-aar", "IO mon_iothread", "worker", "CPU ١/KVM",
    ])
    func otherNamesAreNot(name: String) {
        #expect(VCPUThreadName.vcpuIndex(Substring(name)) == nil)
    }

    @Test func vcpuThreadsKeepTheOlderOfTwoAndDropIndicesOutOfRange() {
        let threads: [(tid: Int32, name: String)] = [
            (100, "qemu-system-aar"), (101, "CPU 1/TCG"), (102, "CPU 0/TCG"), (103, "CPU 1/TCG"), (104, "CPU 4/TCG"), (99, "CPU 2/TCG"),
        ]
        #expect(VCPUThreadName.vcpuThreads(threads, vcpuCount: 4) == [0: 102, 1: 101, 2: 99])
    }

    /// Threads of this process renamed as QEMU names its vCPU threads are
    /// found through /proc, as the daemon finds a real QEMU's.
    @Test func threadsAreFoundByTheirProcName() throws {
        let threads = try (0..<3).map { _ in try ScratchThread() }
        defer { for thread in threads { thread.stop() } }
        let pid = getpid()
        for (index, thread) in threads.enumerated() {
            try "CPU \(2 - index)/TCG".write(toFile: "/proc/\(pid)/task/\(thread.tid)/comm", atomically: false, encoding: .utf8)
        }
        let found = VCPUThreadName.vcpuThreads(ProcFS().threads(ofProcess: pid), vcpuCount: 3)
        #expect(found == [0: threads[2].tid, 1: threads[1].tid, 2: threads[0].tid])
    }

    // MARK: Received memory files

    @Test func memoryFileChecks() throws {
        let unsealed = try MemoryFile(name: "vcpufreq-test-unsealed", byteCount: 8192)
        #expect(try FileInfo.of(unsealed.descriptor) == FileInfo(size: 8192, isRegular: true, cannotShrink: false))
        let sealed = try MemoryFile(name: "vcpufreq-test-sealed", byteCount: 4096, allowSealing: true)
        try sealed.sealSize()
        #expect(try FileInfo.of(sealed.descriptor) == FileInfo(size: 4096, isRegular: true, cannotShrink: true))
        #expect(ftruncate(sealed.descriptor.rawValue, 100) == -1 && errno == EPERM, "the seal holds")
        #expect(throws: Errno.self) { try unsealed.sealSize() }  // created without MFD_ALLOW_SEALING
        let event = try EventFD()
        let info = try FileInfo.of(event.descriptor)
        #expect(!info.isRegular && !info.cannotShrink)
    }

    // MARK: Stream sockets

    @Test func streamSocketsCarryDescriptorsWithTheirBytes() throws {
        let directory = temporaryDirectory("stream")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let listener = try StreamListener(path: directory + "/vhost.sock")
        #expect(try listener.accept() == nil)
        let client = try StreamConnection.connect(to: directory + "/vhost.sock")
        let server = try #require(try listener.accept())
        #expect(server.nonblocking && !client.nonblocking)
        #expect(try server.peerCredentials() == PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()))

        let memory = try MemoryFile(name: "vcpufreq-test-stream", byteCount: 4096)
        try client.send([1, 2, 3, 4, 5, 6], descriptors: [memory.descriptor])
        var buffer = [UInt8](repeating: 0, count: 4)
        // A stream has no boundaries: a short receive takes the first bytes and the descriptor.
        let first = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try server.receive(into: raw, maximumDescriptors: 8) }
        }.get()
        guard case .message(4, let descriptors) = first else {
            Issue.record("expected 4 bytes, got \(first)")
            return
        }
        #expect(buffer == [1, 2, 3, 4] && descriptors.count == 1)
        #expect(try FileInfo.of(descriptors[0].rawDescriptor).size == 4096, "the same file arrived")
        let rest = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try server.receive(into: raw, maximumDescriptors: 8) }
        }.get()
        guard case .message(2, let none) = rest else {
            Issue.record("expected the last 2 bytes, got \(rest)")
            return
        }
        #expect(Array(buffer.prefix(2)) == [5, 6] && none.isEmpty)
        let idle = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try server.receive(into: raw, maximumDescriptors: 8) }
        }.get()
        guard case .wouldBlock = idle else {
            Issue.record("expected nothing, got \(idle)")
            return
        }
        // More descriptors than allowed: truncated, and the ones that came are owned (closed).
        let extra = try MemoryFile(name: "vcpufreq-test-stream-extra", byteCount: 4096)
        try client.send([7], descriptors: [memory.descriptor, extra.descriptor])
        let truncated = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try server.receive(into: raw, maximumDescriptors: 1) }
        }.get()
        guard case .descriptorsTruncated = truncated else {
            Issue.record("expected truncated descriptors, got \(truncated)")
            return
        }
        #expect(truncated.descriptors.count <= 1)
        _ = consume client
        let end = try buffer.withUnsafeMutableBytes { raw in
            Result { () throws(Errno) in try server.receive(into: raw, maximumDescriptors: 8) }
        }.get()
        guard case .endOfStream = end else {
            Issue.record("expected end of stream, got \(end)")
            return
        }
    }
}
