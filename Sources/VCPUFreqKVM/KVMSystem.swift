import SystemPackage

/// An open KVM device (`/dev/kvm`): the API version and capabilities checked
/// once, the fd every VM is created from. Closed when the last VM using it is gone.
public final class KVMSystem: @unchecked Sendable {
    /// Where Linux puts the KVM device.
    public static let defaultDevicePath: FilePath = "/dev/kvm"

    public let devicePath: FilePath
    /// KVM_GET_API_VERSION (always 12 on a usable kernel).
    public let apiVersion: Int
    public let capabilities: KVMCapabilities
    /// Bytes of each vCPU's kvm_run mapping.
    let vcpuMmapSize: Int
    let fd: Int32

    /// Opens the device and checks that it speaks API 12 with every
    /// capability the VMM needs.
    /// - Throws: `KVMError.deviceMissing`, `.permissionDenied`,
    ///   `.apiVersionMismatch`, `.missingCapability`, `.systemCall`.
    public init(devicePath: FilePath = KVMSystem.defaultDevicePath) throws(KVMError) {
        let path = devicePath.string
        let fd: Int32
        switch KVMCall.open(path: path) {
        case .success(let opened):
            fd = opened
        case .failure(let errno):
            switch errno {
            case .noSuchFileOrDirectory, .notDirectory:
                throw .deviceMissing(path: path)
            case .permissionDenied, .notPermitted:
                throw .permissionDenied(path: path)
            default:
                throw .systemCall(operation: "open \(path)", errno: errno)
            }
        }
        do throws(KVMError) {
            let version = try KVMCall.apiVersion(fd)
            guard version == KVMCall.apiVersion else {
                throw KVMError.apiVersionMismatch(path: path, found: version, expected: KVMCall.apiVersion)
            }
            let capabilities = KVMSystem.probeCapabilities(fd)
            if let missing = capabilities.missingRequired.first { throw KVMError.missingCapability(missing) }
            self.vcpuMmapSize = try KVMCall.vcpuMmapSize(fd)
            self.apiVersion = version
            self.capabilities = capabilities
        } catch {
            KVMCall.close(fd)
            throw error
        }
        self.fd = fd
        self.devicePath = devicePath
    }

    deinit { KVMCall.close(fd) }

    static func probeCapabilities(_ fd: Int32) -> KVMCapabilities {
        KVMCapabilities(
            ioeventfd: KVMCall.checkExtension(fd, KVMCall.Capability.ioeventfd) > 0,
            ioeventfdAnyLength: KVMCall.checkExtension(fd, KVMCall.Capability.ioeventfdAnyLength) > 0,
            readOnlyMemory: KVMCall.checkExtension(fd, KVMCall.Capability.readOnlyMemory) > 0,
            coalescedMMIO: KVMCall.checkExtension(fd, KVMCall.Capability.coalescedMMIO) > 0,
            immediateExit: KVMCall.checkExtension(fd, KVMCall.Capability.immediateExit) > 0,
            maximumVCPUs: KVMCall.checkExtension(fd, KVMCall.Capability.maximumVCPUs),
            recommendedVCPUs: KVMCall.checkExtension(fd, KVMCall.Capability.recommendedVCPUs))
    }
}
