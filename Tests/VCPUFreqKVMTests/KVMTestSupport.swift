import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
import VCPUFreqKVM
import VCPUFreqLinux

/// Tests that need a real KVM are skipped, with this reason, where /dev/kvm is absent.
let kvmAvailable = access("/dev/kvm", F_OK) == 0
let requiresKVM = Testing.ConditionTrait.enabled(if: kvmAvailable, "no /dev/kvm on this machine: KVM tests skipped")

/// The device address space the tests use: the upstream driver's customary base.
let deviceMap = DeviceAddressMap(vcpuCount: 2)

/// Address of register `register` in vCPU `vcpu`'s upstream window.
func upstreamRegister(_ register: UpstreamABI.Register, vcpu: Int = 0) -> UInt64 {
    deviceMap.base + DeviceAddressMap.upstreamOffset + UInt64(vcpu) * UpstreamABI.windowSize + register.rawValue
}

let sharedPageAddress = deviceMap.base + DeviceAddressMap.sharedPageOffset
func doorbellAddress(_ index: Int) -> UInt64 {
    deviceMap.base + DeviceAddressMap.doorbellOffset + DeviceAddressMap.doorbellStride * UInt64(index)
}

/// Bytes of an access of `width`, as an integer mask.
func mask(_ width: AccessWidth) -> UInt64 {
    width == .word64 ? .max : (1 << (8 * UInt64(width.rawValue))) - 1
}

/// One access the handler saw.
struct Access: Equatable, Sendable, CustomStringConvertible {
    var vcpu: Int
    var gpa: UInt64
    var width: Int
    var value: UInt64
    var isWrite: Bool
    var isPort = false

    var description: String {
        "\(isPort ? "port" : "mmio") \(isWrite ? "W" : "R") vcpu \(vcpu) 0x\(String(gpa, radix: 16))/\(width) = 0x\(String(value, radix: 16))"
    }
}

/// Records every access; read number n (counted per handler) returns `readValue(n, gpa)`.
final class RecordingHandler: MMIOHandler {
    private let log = AnnotatedMutex<[Access]>([])
    private let readValue: @Sendable (Int, UInt64) -> UInt64

    init(readValue: @escaping @Sendable (Int, UInt64) -> UInt64 = { _, _ in 0 }) {
        self.readValue = readValue
    }

    var accesses: [Access] { log.withLock { $0 } }

    func read(vcpu: Int, gpa: UInt64, width: Int) -> UInt64 {
        let n = log.withLock { log in
            let n = log.filter { !$0.isWrite }.count
            log.append(Access(vcpu: vcpu, gpa: gpa, width: width, value: 0, isWrite: false))
            return n
        }
        return readValue(n, gpa)
    }

    func write(vcpu: Int, gpa: UInt64, width: Int, value: UInt64) {
        log.withLock { $0.append(Access(vcpu: vcpu, gpa: gpa, width: width, value: value, isWrite: true)) }
    }

    func portRead(vcpu: Int, port: UInt16, width: Int) -> UInt64 {
        let n = log.withLock { log in
            let n = log.filter { !$0.isWrite }.count
            log.append(Access(vcpu: vcpu, gpa: UInt64(port), width: width, value: 0, isWrite: false, isPort: true))
            return n
        }
        return readValue(n, UInt64(port))
    }

    func portWrite(vcpu: Int, port: UInt16, width: Int, value: UInt64) {
        log.withLock {
            $0.append(Access(vcpu: vcpu, gpa: UInt64(port), width: width, value: value, isWrite: true, isPort: true))
        }
    }
}

/// Reads `count` bytes of a file at `offset` with pread: a path to the memory
/// that does not go through any mapping the VMM made.
func pread(_ fd: FileDescriptor, offset: Int64, count: Int) throws -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    let read = try bytes.withUnsafeMutableBytes { try fd.read(fromAbsoluteOffset: offset, into: $0) }
    #expect(read == count)
    return bytes
}

func pwrite32(_ fd: FileDescriptor, offset: Int64, _ value: UInt32) throws {
    let bytes = withUnsafeBytes(of: value.littleEndian) { Array($0) }
    _ = try fd.writeAll(toAbsoluteOffset: offset, bytes)
}

func littleEndian32(_ bytes: [UInt8], at offset: Int = 0) -> UInt32 {
    (0..<4).reduce(0) { $0 | UInt32(bytes[offset + $1]) << (8 * UInt32($1)) }
}

func littleEndian64(_ bytes: [UInt8], at offset: Int = 0) -> UInt64 {
    (0..<8).reduce(0) { $0 | UInt64(bytes[offset + $1]) << (8 * UInt64($1)) }
}

/// The calling thread's TID, from /proc/thread-self (Swift cannot call gettid).
func currentTID() -> pid_t {
    var buffer = [CChar](repeating: 0, count: 128)
    let length = readlink("/proc/thread-self", &buffer, buffer.count - 1)
    guard length > 0 else { return -1 }
    let text = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    return pid_t(text.split(separator: "/").last.map(String.init) ?? "") ?? -1
}

func fileExists(_ path: String) -> Bool { access(path, F_OK) == 0 }

func readText(_ path: String) -> String? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var buffer = [CChar](repeating: 0, count: 256)
    guard fgets(&buffer, Int32(buffer.count), file) != nil else { return nil }
    return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
