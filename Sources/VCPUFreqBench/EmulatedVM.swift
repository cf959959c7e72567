import Foundation
import SystemPackage
import VCPUFreqClient
import VCPUFreqCore
import VCPUFreqLinux

/// One VM as its VMM presents it to the daemon: its own connection (HELLO,
/// ATTACH with the TIDs of idle threads standing in for vCPU threads,
/// MAP_SHARED with doorbells), and the VMM's MAP_SHARED mapping of the
/// shared page — the memory KVM would map into the guest.
final class EmulatedVM {
    let name: String
    let client: VCPUFreqClient
    let attached: AttachOutcome
    let vcpuCount: Int
    /// The VMM's mapping of the whole memfd (kept alive while the VM is).
    private let mapping: MappedRegion
    let page: AtomicSharedPageMemory
    let guest: SharedPageGuest<AtomicSharedPageMemory>
    /// Doorbell i of vCPU i: the eventfd a VMM registers as KVM ioeventfd.
    let doorbells: [FileDescriptor]
    private var detached = false

    struct AttachOutcome {
        var vmID: UInt32
        var actuators: String
    }

    /// How long the shared page may take to show an active host header.
    static let headerTimeoutSeconds = 5.0

    init(socketPath: String, name: String, profile: String, threadIDs: [Int32]) throws {
        self.name = name
        vcpuCount = threadIDs.count
        do {
            client = try VCPUFreqClient(socketPath: socketPath, clientName: "vcpufreq-bench")
            let ok = try client.attach(vmName: name, profile: profile, threadIDs: threadIDs)
            attached = AttachOutcome(vmID: ok.vmID, actuators: ok.actuators)
            let shared = try client.mapShared(mirror: false, doorbells: true)
            defer {
                try? shared.page.close()
                try? shared.mirror?.close()
            }
            guard shared.doorbells.count == threadIDs.count else {
                for bell in shared.doorbells { try? bell.close() }
                throw BenchError("VM \(name): \(shared.doorbells.count) doorbells for \(threadIDs.count) vCPUs")
            }
            doorbells = shared.doorbells
            let layout = shared.layout
            guard layout.pageSize >= UInt64(SharedPageABI.regionSize(vcpuCount: threadIDs.count)),
                layout.pageOffset + layout.pageSize <= layout.memfdSize
            else {
                throw BenchError("VM \(name): SHARED_OK layout does not hold \(threadIDs.count) slots: \(layout)")
            }
            mapping = try MappedRegion(mapping: shared.page, byteCount: Int(layout.memfdSize), writable: true)
            page = AtomicSharedPageMemory(base: mapping.baseAddress + Int(layout.pageOffset), byteCount: Int(layout.pageSize))
        } catch let error as ClientError {
            throw BenchError("VM \(name): \(error)")
        } catch let error as Errno {
            throw BenchError("VM \(name): cannot map the shared page: \(error)")
        }
        guest = SharedPageGuest(memory: page, vcpuCount: threadIDs.count)
        try waitForActiveHeader()
    }

    /// A guest trusts the page once `host_status` says active (acquire).
    private func waitForActiveHeader() throws {
        let deadline = Date().addingTimeInterval(Self.headerTimeoutSeconds)
        while Date() < deadline {
            let status = SharedPageABI.HostStatus(rawValue: page.loadAcquire(SharedPageABI.Header.hostStatus))
            if status.contains(.active), page.load(SharedPageABI.Header.magic) == SharedPageABI.magic { return }
            usleep(1000)
        }
        throw BenchError("VM \(name): the shared page header never became active")
    }

    /// The daemon's guest-physical offset of vCPU `vcpu`'s util_hint register.
    static func utilHintOffset(vcpu: Int) -> UInt64 {
        DeviceAddressMap.utilHintOffset + UInt64(vcpu) * UtilHintABI.windowSize + UtilHintABI.Register.utilHint.rawValue
    }

    /// DETACH (the daemon restores the threads), then the doorbells go.
    func detach() {
        guard !detached else { return }
        detached = true
        _ = try? client.detach()
        for bell in doorbells { try? bell.close() }
    }

    deinit { detach() }
}
