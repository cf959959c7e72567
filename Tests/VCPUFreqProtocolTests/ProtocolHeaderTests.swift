import CVCPUFreqABI
import Testing
@testable import VCPUFreqProtocol

/// The C header VMM authors compile against must describe exactly the bytes
/// the Swift codec produces: each fixed-size message is encoded in Swift and
/// read back through the C struct.
@Suite struct ProtocolHeaderTests {
    @Test func constantsMatch() {
        #expect(VCPUFREQ_PROTO_MAGIC == Wire.magic)
        #expect(VCPUFREQ_PROTO_VERSION == Int32(Wire.version))
        #expect(VCPUFREQ_PROTO_HEADER_SIZE == Int32(Wire.headerSize))
        #expect(VCPUFREQ_PROTO_MAX_CLIENT_MESSAGE == Int32(Wire.maximumClientMessage))
        #expect(VCPUFREQ_PROTO_MAX_DAEMON_MESSAGE == Int32(Wire.maximumDaemonMessage))
        #expect(VCPUFREQ_PROTO_MAX_STRING == Int32(Wire.maximumStringLength))
        #expect(VCPUFREQ_PROTO_MAX_NAME == Int32(Wire.maximumNameLength))
        #expect(VCPUFREQ_PROTO_MAX_VCPUS == Int32(Wire.maximumVCPUs))
        #expect(VCPUFREQ_PROTO_DOORBELLS_PER_MSG == Int32(Wire.doorbellsPerMessage))
        #expect(UInt16(VCPUFREQ_MSG_FLAG_SYNC) == MessageFlags.sync.rawValue)
        #expect(UInt32(VCPUFREQ_MAP_MIRROR) == ClientMessage.MapSharedRequest.mirror)
        #expect(UInt32(VCPUFREQ_MAP_DOORBELLS) == ClientMessage.MapSharedRequest.doorbells)
        #expect(UInt32(VCPUFREQ_STATUS_ALL_VMS) == ClientMessage.StatusRequest.allVMs)
    }

    @Test(arguments: MessageType.allCases)
    func messageTypesMatch(type: MessageType) {
        let c: [MessageType: vcpufreq_msg_type] = [
            .hello: VCPUFREQ_MSG_HELLO, .attach: VCPUFREQ_MSG_ATTACH, .detach: VCPUFREQ_MSG_DETACH,
            .read: VCPUFREQ_MSG_READ, .write: VCPUFREQ_MSG_WRITE, .mapShared: VCPUFREQ_MSG_MAP_SHARED,
            .status: VCPUFREQ_MSG_STATUS, .helloOK: VCPUFREQ_MSG_HELLO_OK, .attachOK: VCPUFREQ_MSG_ATTACH_OK,
            .detachOK: VCPUFREQ_MSG_DETACH_OK, .readOK: VCPUFREQ_MSG_READ_OK, .writeOK: VCPUFREQ_MSG_WRITE_OK,
            .sharedOK: VCPUFREQ_MSG_SHARED_OK, .doorbells: VCPUFREQ_MSG_DOORBELLS, .statusOK: VCPUFREQ_MSG_STATUS_OK,
            .error: VCPUFREQ_MSG_ERROR,
        ]
        #expect(c[type].map { UInt16($0.rawValue) } == type.rawValue)
    }

    @Test(arguments: ErrorCode.allCases)
    func errorCodesMatch(code: ErrorCode) {
        let c: [ErrorCode: vcpufreq_error] = [
            .malformed: VCPUFREQ_ERR_MALFORMED, .unsupportedVersion: VCPUFREQ_ERR_UNSUPPORTED_VERSION,
            .unknownType: VCPUFREQ_ERR_UNKNOWN_TYPE, .invalidState: VCPUFREQ_ERR_INVALID_STATE,
            .foreignThread: VCPUFREQ_ERR_FOREIGN_THREAD, .unknownProfile: VCPUFREQ_ERR_UNKNOWN_PROFILE,
            .permissionDenied: VCPUFREQ_ERR_PERMISSION_DENIED, .unexpectedDescriptors: VCPUFREQ_ERR_UNEXPECTED_DESCRIPTORS,
            .resources: VCPUFREQ_ERR_RESOURCES, .duplicateVM: VCPUFREQ_ERR_DUPLICATE_VM,
        ]
        #expect(c[code].map { UInt32($0.rawValue) } == code.rawValue)
    }

    /// Copies encoded bytes into a zeroed C struct of the same size.
    private func asC<T>(_ bytes: [UInt8], _: T.Type) -> T? {
        guard bytes.count == MemoryLayout<T>.size else { return nil }
        return bytes.withUnsafeBytes { $0.loadUnaligned(as: T.self) }
    }

    private func encode(client: ClientMessage, id: UInt32) -> [UInt8] {
        var writer = ByteWriter()
        client.encode(id: id, into: &writer)
        return writer.bytes
    }

    private func encode(daemon: DaemonMessage, id: UInt32) -> [UInt8] {
        var writer = ByteWriter()
        daemon.encode(id: id, into: &writer)
        return writer.bytes
    }

    @Test func writeStructMatchesEncoding() throws {
        let bytes = encode(client: .write(.init(vcpu: 7, width: 4, offset: 0x7004, value: 0x1234_5678_9ABC, sync: true)), id: 99)
        let c = try #require(asC(bytes, vcpufreq_msg_write.self))
        #expect(c.header.type == UInt16(VCPUFREQ_MSG_WRITE.rawValue))
        #expect(c.header.flags == UInt16(VCPUFREQ_MSG_FLAG_SYNC))
        #expect(c.header.length == 40 && c.header.id == 99 && c.header.reserved == 0)
        #expect(c.vcpu == 7 && c.width == 4 && c.offset == 0x7004 && c.value == 0x1234_5678_9ABC)
    }

    @Test func readStructMatchesEncoding() throws {
        let bytes = encode(client: .read(.init(vcpu: 3, width: 4, offset: 0x3014)), id: 5)
        let c = try #require(asC(bytes, vcpufreq_msg_read.self))
        #expect(c.header.type == UInt16(VCPUFREQ_MSG_READ.rawValue) && c.header.length == 32)
        #expect(c.vcpu == 3 && c.width == 4 && c.offset == 0x3014)
        let map = try #require(asC(encode(client: .mapShared(.init(flags: 3)), id: 1), vcpufreq_msg_map_shared.self))
        #expect(map.flags == 3)
        let status = try #require(asC(encode(client: .status(.init(flags: 1)), id: 1), vcpufreq_msg_status.self))
        #expect(status.flags == 1)
    }

    @Test func replyStructsMatchEncoding() throws {
        let read = try #require(asC(encode(daemon: .readOK(value: 1_803_000, invalid: 4), id: 3), vcpufreq_msg_read_ok.self))
        #expect(read.header.type == UInt16(VCPUFREQ_MSG_READ_OK.rawValue) && read.header.id == 3)
        #expect(read.value == 1_803_000 && read.invalid == 4)
        let write = try #require(asC(encode(daemon: .writeOK(invalid: 2), id: 3), vcpufreq_msg_write_ok.self))
        #expect(write.invalid == 2)
        let detach = try #require(asC(encode(daemon: .detachOK(restoredThreads: 8), id: 3), vcpufreq_msg_detach_ok.self))
        #expect(detach.restored_threads == 8)
        let bells = try #require(asC(encode(daemon: .doorbells(first: 240, count: 13), id: 3), vcpufreq_msg_doorbells.self))
        #expect(bells.first == 240 && bells.count == 13)
        let layout = DaemonMessage.SharedLayout(
            memfdSize: 1, pageOffset: 2, pageSize: 3, pageDeviceOffset: 4, mirrorOffset: 5, mirrorSize: 6,
            mirrorDeviceOffset: 7, doorbellDeviceOffset: 8, doorbellStride: 9, doorbellCount: 10, doorbellMessages: 11)
        let shared = try #require(asC(encode(daemon: .sharedOK(layout), id: 3), vcpufreq_msg_shared_ok.self))
        #expect([shared.memfd_size, shared.page_offset, shared.page_size, shared.page_device_offset, shared.mirror_offset,
                 shared.mirror_size, shared.mirror_device_offset, shared.doorbell_device_offset] == [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(shared.doorbell_stride == 9 && shared.doorbell_count == 10 && shared.doorbell_messages == 11)
        #expect(shared.page_kind == VCPUFREQ_PAGE_KIND_MEMFD)
        var bpfLayout = layout
        bpfLayout.pageKind = .bpfMap
        let bpf = try #require(asC(encode(daemon: .sharedOK(bpfLayout), id: 3), vcpufreq_msg_shared_ok.self))
        #expect(bpf.page_kind == VCPUFREQ_PAGE_KIND_BPF_MAP)
    }

    /// The BPF-map page is a backwards-compatible addition: a feature bit
    /// outside the shared page's, and SHARED_OK's former reserved word (0,
    /// what every earlier daemon sent, is the memfd).
    @Test func bpfMapPageAdditionMatches() throws {
        #expect(VCPUFREQ_PROTO_F_BPF_MAP_PAGE == ProtocolFeature.bpfMapPage)
        #expect(VCPUFREQ_PROTO_F_BPF_MAP_PAGE & 0xFFFF == 0, "bits 0-15 are the shared page's features")
        #expect(VCPUFREQ_PAGE_KIND_MEMFD == SharedPageKind.memfd.rawValue)
        #expect(VCPUFREQ_PAGE_KIND_BPF_MAP == SharedPageKind.bpfMap.rawValue)
        #expect(MemoryLayout<vcpufreq_msg_shared_ok>.offset(of: \.page_kind) == 92)
        // An old daemon's SHARED_OK (reserved = 0) decodes as a memfd page with one descriptor.
        let layout = DaemonMessage.SharedLayout(
            memfdSize: 0x2000, pageOffset: 0, pageSize: 0x1000, pageDeviceOffset: 0x80_0000, mirrorOffset: 0x1000,
            mirrorSize: 0x1000, mirrorDeviceOffset: 0, doorbellDeviceOffset: 0x88_0000, doorbellStride: 4,
            doorbellCount: 1, doorbellMessages: 1)
        let bytes = encode(daemon: .sharedOK(layout), id: 1)
        #expect(bytes[92..<96].allSatisfy { $0 == 0 })
        let decoded = try bytes.withUnsafeBytes { try DaemonMessage.decode($0) }
        #expect(decoded.message == .sharedOK(layout))
        #expect(decoded.message.descriptorCount == 1)
        // A BPF-map page with a mirror carries two descriptors, without one.
        var bpf = layout
        bpf.pageKind = .bpfMap
        #expect(DaemonMessage.sharedOK(bpf).descriptorCount == 2)
        bpf.mirrorSize = 0
        #expect(DaemonMessage.sharedOK(bpf).descriptorCount == 1)
        // An undefined kind is malformed, never guessed.
        var unknown = bytes
        unknown[92] = 7
        #expect(throws: ProtocolViolation.self) { try unknown.withUnsafeBytes { try DaemonMessage.decode($0) } }
    }
}
