import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol
import VCPUFreqSCMI
import VCPUFreqVhostUser

/// One VM's SCMI device over vhost-user: the front-end connection (the
/// transport), the SCMI platform (the protocol) and the VM's session (the
/// same policy, actuators and restore as every other ABI). The only place
/// where the three meet: the command queue's chains go to the platform as
/// bytes, and the platform's requests go to the session.
final class SCMIDevice {
    /// virtio-scmi's queues (virtio spec 5.17.2) and feature bit 0,
    /// VIRTIO_SCMI_F_P2A_CHANNELS: the eventq exists. The device sends no
    /// notifications (NOTIFY_* are NOT_SUPPORTED), so the driver's eventq
    /// buffers stay posted, which the spec allows.
    static let commandQueue = 0
    static let eventQueue = 1
    static let virtioDevice = VhostUserBackend.Device(
        queueCount: 2, maximumQueueSize: 1024,
        features: [.version1, .indirectDescriptors, .device(bit: 0)], protocolFeatures: .multipleQueues)
    /// A virtio-scmi command is one readable and one writable buffer (Linux
    /// adds exactly two sgs); a few more are tolerated, longer chains are broken.
    static let maximumChainLength = 8
    /// Chains served per wake-up before the loop looks at other VMs.
    static let chainsPerWakeup = 256

    let id: UInt32
    let endpoint: Int
    let transport: VhostUserConnection
    private(set) var platform: SCMIPlatform
    let session: VMSession
    private(set) var kicks: UInt64 = 0
    /// When to look for vCPU threads again (missing or gone ones); nil: all there.
    var nextThreadScan: UInt64?
    let attachedAt: UInt64

    init(id: UInt32, endpoint: Int, transport: VhostUserConnection, session: VMSession, host: HostTopology, now: UInt64) {
        self.id = id
        self.endpoint = endpoint
        self.transport = transport
        self.session = session
        platform = SCMIPlatform(model: session.model, host: host)
        attachedAt = now
    }

    /// Serves the command queue (after a kick, or when it starts serving).
    /// Returns true when chains are left for the next turn; a broken ring throws.
    func serveCommands(now: UInt64) throws(VirtqueueError) -> Bool {
        guard transport.isServing(Self.commandQueue) else { return false }
        let outcome = try transport.serve(queue: Self.commandQueue, limit: Self.chainsPerWakeup) { request, length, response in
            let result = platform.handle(request: request, requestLength: length, response: response, host: session)
            if let guestRequest = result.request { session.submitRequest(guestRequest, now: now) }
            return result.responseLength
        }
        // The hints first, then the interrupt: a used buffer tells the guest its level is in force.
        session.applyChanges(now: now)
        transport.interrupt(queue: Self.commandQueue)
        if case .more = outcome { return true }
        return false
    }

    func kicked() { kicks &+= 1 }

    /// STATUS of the device.
    func status(socket: String) -> StatusDocument.SCMIDevice {
        let counters = platform.counters
        var statuses: [String: UInt64] = [:]
        for status in SCMIStatus.allCases where status != .success && counters[status] > 0 {
            statuses[status.description] = counters[status]
        }
        let domains = platform.domains.enumerated().map { index, domain in
            StatusDocument.SCMIDomain(
                id: index, name: String(decoding: domain.name, as: UTF8.self), vcpus: domain.vcpus, levelsKHz: domain.levelsKHz,
                requestedKHz: platform.requestedIndex[index].map { domain.levelsKHz[$0] },
                appliedKHz: platform.submittedIndex[index].map { domain.levelsKHz[$0] },
                minimumKHz: domain.levelsKHz[platform.minimumIndex[index]],
                maximumKHz: domain.levelsKHz[platform.maximumIndex[index]], capKHz: domain.capKHz)
        }
        return StatusDocument.SCMIDevice(
            socket: socket, ackedFeatures: transport.backend.ackedFeatures,
            queuesServing: (0..<Self.virtioDevice.queueCount).map(transport.isServing),
            messages: counters.messages, errors: counters.errors, errorStatuses: statuses, levelSets: counters.levelSets,
            levelGets: counters.levelGets, limitsSets: counters.limitsSets, shortBuffers: counters.shortBuffers, kicks: kicks,
            unsealedMemory: transport.unsealedMemory, missingThreads: session.missingThreads, domains: domains)
    }
}
