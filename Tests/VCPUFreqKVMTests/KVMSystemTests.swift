import SystemPackage
import Testing
import VCPUFreqCore
import VCPUFreqKVM

@Suite struct KVMSystemTests {
    @Test func aMissingDeviceFailsWithTheDocumentedMessage() {
        let path = "/nonexistent/vcpufreq/kvm"
        #expect(throws: KVMError.deviceMissing(path: path)) { try KVMSystem(devicePath: FilePath(path)) }
        let message = KVMError.deviceMissing(path: path).description
        #expect(message.hasPrefix("KVM device \(path) does not exist: "))
    }

    @Test func aFileThatIsNotKVMFailsOnTheVersionIoctl() {
        // /dev/null opens read-write but answers every ioctl with ENOTTY.
        #expect(throws: KVMError.systemCall(operation: "KVM_GET_API_VERSION", errno: .inappropriateIOCTLForDevice)) {
            try KVMSystem(devicePath: "/dev/null")
        }
    }

    @Test func permissionDeniedNamesTheDeviceAndTheRemedy() {
        let message = KVMError.permissionDenied(path: "/dev/kvm").description
        #expect(message.contains("/dev/kvm"))
        #expect(message.contains("group"))
    }

    @Test(requiresKVM) func theRealDeviceSpeaksAPI12WithTheNeededCapabilities() throws {
        let system = try KVMSystem()
        #expect(system.apiVersion == 12)
        let capabilities = system.capabilities
        #expect(capabilities.missingRequired.isEmpty)
        #expect(capabilities.ioeventfd && capabilities.readOnlyMemory && capabilities.immediateExit)
        #expect(capabilities.maximumVCPUs >= capabilities.recommendedVCPUs)
        #expect(capabilities.description.contains("MAX_VCPUS \(capabilities.maximumVCPUs)"))
    }

    @Test func missingCapabilitiesAreNamed() {
        let none = KVMCapabilities(
            ioeventfd: false, ioeventfdAnyLength: false, readOnlyMemory: false, coalescedMMIO: false,
            immediateExit: false, maximumVCPUs: 0, recommendedVCPUs: 0)
        #expect(
            none.missingRequired
                == ["KVM_CAP_IOEVENTFD", "KVM_CAP_READONLY_MEM", "KVM_CAP_IMMEDIATE_EXIT", "KVM_CAP_MAX_VCPUS"])
        let coalescedOnlyMissing = KVMCapabilities(
            ioeventfd: true, ioeventfdAnyLength: false, readOnlyMemory: true, coalescedMMIO: false,
            immediateExit: true, maximumVCPUs: 1, recommendedVCPUs: 1)
        #expect(coalescedOnlyMissing.missingRequired.isEmpty)
    }
}

@Suite struct GuestLayoutTests {
    @Test(arguments: [1, 2, 16, 1024])
    func scratchStartsAfterTheLastVCPUArea(vcpuCount: Int) throws {
        let ramSize: UInt64 = 128 << 20
        let layout = try GuestLayout(vcpuCount: vcpuCount, ramSize: ramSize)
        // Hand-computed: areas of 64 KiB from 128 KiB.
        #expect(layout.scratch.lowerBound == 0x2_0000 + 0x1_0000 * UInt64(vcpuCount))
        #expect(layout.scratch.upperBound == ramSize)
        #expect(GuestLayout.maximumScriptOps == 1024)
    }

    @Test(arguments: [
        (1, UInt64(0x2_f000)),  // one page short of one vCPU area
        (2, UInt64(0x3_f000)),
        (1, UInt64(0x10_0800)),  // not whole pages
        (0, UInt64(1 << 20)),  // no vCPU
        (1, UInt64(1 << 30)),  // reaches the DONE page
    ])
    func badSizesAreRejected(vcpuCount: Int, ramSize: UInt64) {
        #expect(throws: KVMError.self) { try GuestLayout(vcpuCount: vcpuCount, ramSize: ramSize) }
    }

    @Test func theDonePageIsTheLastBelowTheIdentityMap() {
        #expect(GuestLayout.addressableLimit == 1 << 30)
        #expect(GuestLayout.doneAddress == (1 << 30) - 4096)
        // The upstream device base must lie inside the identity map, above default RAM.
        #expect(DeviceAddressMap.defaultBase + DeviceAddressMap.totalSpan < GuestLayout.doneAddress)
        #expect(GuestLayout.defaultRAMSize <= DeviceAddressMap.defaultBase)
    }
}
