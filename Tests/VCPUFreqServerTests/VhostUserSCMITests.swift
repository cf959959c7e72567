import Foundation
import Glibc
import Testing
import VCPUFreqClient
import VCPUFreqProtocol
import VCPUFreqVhostUser

/// SCMI commands and responses byte by byte, from docs/scmi.md (DEN0056:
/// message id 7:0, type 9:8, protocol 17:10, token 27:18; little-endian
/// words), not from the code under test.
enum SCMIBytes {
    static let base: UInt8 = 0x10, performance: UInt8 = 0x13

    static func command(_ protocolID: UInt8, _ message: UInt8, _ parameters: [UInt32] = [], token: UInt32 = 7) -> [UInt8] {
        let header = UInt32(message) | UInt32(protocolID) << 10 | (token & 0x3FF) << 18
        return ([header] + parameters).flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } }
    }

    /// Word `index` of a response: 0 the echoed header, 1 the status, 2... the values.
    static func word(_ response: [UInt8], _ index: Int) -> UInt32 {
        guard response.count >= 4 * index + 4 else { return 0xDEAD_BEEF }
        return (0..<4).reduce(UInt32(0)) { $0 | UInt32(response[4 * index + $1]) << (8 * $1) }
    }

    static func status(_ response: [UInt8]) -> Int32 { Int32(bitPattern: word(response, 1)) }
}

/// `vcpufreq serve --vhost-user-scmi` against a front-end played by this
/// process (`VhostUserFrontEnd`: QEMU's message sequence, guest RAM on a
/// memfd, the guest driver's rings), the test's threads standing in for
/// QEMU's vCPU threads. The hostile cases check that a front-end breaking
/// the protocol or its rings loses its own connection only.
extension DaemonTests {
    @Suite struct VhostUserSCMI {
        /// A daemon with one vhost-user socket per VM (profile "regs": 2
        /// vCPUs, one domain each, table 1/1.5/2 GHz), in a directory of its own.
        final class Setup {
            let directory: String
            let daemon: Daemon
            let sockets: [String]

            /// `endpoints`: NAME=PROFILE[,...]; NAME.sock in the directory.
            init(_ endpoints: [String] = ["alpha=regs,name=alpha", "beta=nice,name=beta"]) throws {
                let directory = makeTemporaryDirectory("scmi")
                let names = endpoints.map { String($0.prefix { $0 != "=" }) }
                let paths = names.map { "\(directory)/\($0).sock" }
                var arguments: [String] = []
                for (path, endpoint) in zip(paths, endpoints) {
                    arguments += ["--vhost-user-scmi", path + "=" + endpoint.drop { $0 != "=" }.dropFirst()]
                }
                self.directory = directory
                sockets = paths
                daemon = try Daemon(topology: TestTopology.toml(), arguments: arguments)
            }

            deinit { try? FileManager.default.removeItem(atPath: directory) }

            func frontEnd(_ index: Int = 0, start: Bool = true) throws -> VhostUserFrontEnd {
                try VhostUserFrontEnd(path: sockets[index], start: start)
            }

            /// STATUS JSON: the VM named `name` (nil when not attached) and the sockets.
            func status() throws -> (vms: [String: [String: Any]], sockets: [[String: Any]]) {
                let json = try daemon.client().statusJSON(allVMs: true)
                let document = try #require(try JSONSerialization.jsonObject(with: Data(json)) as? [String: Any])
                var vms: [String: [String: Any]] = [:]
                for vm in document["vms"] as? [[String: Any]] ?? [] { vms[vm["name"] as? String ?? ""] = vm }
                let sockets = (document["daemon"] as? [String: Any])?["vhost_user_sockets"] as? [[String: Any]] ?? []
                return (vms, sockets)
            }

            func scmi(_ name: String) throws -> [String: Any]? { try status().vms[name]?["scmi"] as? [String: Any] }

            func lastFailure(_ socket: Int = 0) throws -> String? { try status().sockets[socket]["last_failure"] as? String }
        }

        /// Names `threads` as QEMU names its vCPU threads with debug-threads=on.
        static func name(_ threads: VCPUThreads, _ names: [String]) throws {
            for (tid, name) in zip(threads.tids, names) {
                try name.write(toFile: "/proc/\(getpid())/task/\(tid)/comm", atomically: false, encoding: .utf8)
            }
        }

        /// The guest's probe, then a LEVEL_SET that becomes a hint on QEMU's
        /// (here: this process's) vCPU thread, found by its name; LEVEL_GET
        /// from the daemon's cache; the VM gone and its threads restored when
        /// the front-end closes.
        @Test func guestProbeAndLevelSetReachTheNamedThreads() throws {
            let threads = try VCPUThreads()
            try Self.name(threads, ["CPU 0/TCG", "CPU 1/TCG"])
            let setup = try Setup()
            var frontEnd: VhostUserFrontEnd? = try setup.frontEnd()
            try probeAndSet(setup, frontEnd!, threads)
            frontEnd = nil
            #expect(eventually { (try? setup.status().vms["alpha"]) == nil }, "the VM is detached with its front-end")
            #expect(threads.waitUntilRestored(), "\(threads.live) vs \(threads.originals)")
            #expect(try setup.lastFailure() == nil, "a clean disconnect is no failure")
        }

        func probeAndSet(_ setup: Setup, _ fe: VhostUserFrontEnd, _ threads: VCPUThreads) throws {
            #expect(fe.offeredFeatures & (1 << 32 | 1 << 30 | 1) == (1 << 32 | 1 << 30 | 1), "VERSION_1, PROTOCOL_FEATURES, P2A_CHANNELS")
            #expect(fe.offeredProtocolFeatures & 1 == 1 && fe.queueCount == 2, "MQ: two queues")

            let version = try fe.call(SCMIBytes.command(SCMIBytes.base, 0x0))
            #expect(SCMIBytes.word(version, 0) == SCMIBytes.word(SCMIBytes.command(SCMIBytes.base, 0x0), 0), "the header echoed")
            #expect(SCMIBytes.status(version) == 0 && SCMIBytes.word(version, 2) == 0x20000)
            #expect(try fe.interrupts() >= 1, "the call eventfd was signalled")
            let attributes = try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x1))
            #expect(SCMIBytes.word(attributes, 2) & 0xFFFF == 2, "two domains")
            let levels = try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x4, [1, 0]))
            #expect(SCMIBytes.word(levels, 2) == 3, "3 returned, 0 remaining")
            #expect([3, 6, 9].map { SCMIBytes.word(levels, $0) } == TestTopology.tableKHz)

            let set = try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x7, [1, 1_500_000]))
            #expect(SCMIBytes.status(set) == 0 && set.count == 8)
            let want = TestTopology.utilization(forKHz: 1_500_000)
            #expect(eventually {
                setup.daemon.records().contains { $0.action == "apply" && $0.tid == threads.tids[1] && $0.utilMin == want }
            }, "\(setup.daemon.records())")
            #expect(threads.live.map(\.cpus) == TestTopology.pinnedCPUs, "pinned like any attached VM")
            let status = try #require(try setup.status().vms["alpha"])
            #expect((status["vcpus"] as? [[String: Any]])?.compactMap { $0["tid"] as? Int } == threads.tids.map(Int.init))
            #expect((status["vcpus"] as? [[String: Any]])?[1]["util_min"] as? Int == want)
            #expect((status["vcpus"] as? [[String: Any]])?[1]["last_request"] as? String == "scmi 1500000 kHz")
            let scmi = try #require(status["scmi"] as? [String: Any])
            let domain = try #require((scmi["domains"] as? [[String: Any]])?[1])
            #expect(domain["requested_khz"] as? Int == 1_500_000 && domain["applied_khz"] as? Int == 1_500_000)
            #expect(scmi["missing_threads"] as? [Int] == [] && scmi["unsealed_memory"] as? Bool == false)
            #expect(scmi["level_sets"] as? Int == 1 && scmi["errors"] as? Int == 0)

            let current = (status["vcpus"] as? [[String: Any]])?[1]["current_performance_k_hz"] as? Int
            let get = try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x8, [1]))
            #expect(SCMIBytes.status(get) == 0 && Int(SCMIBytes.word(get, 2)) == current, "LEVEL_GET \(SCMIBytes.word(get, 2)) = the cached cur_perf \(String(describing: current))")

            #expect(try fe.stopQueue(0) == 5, "GET_VRING_BASE: five chains consumed")
        }

        /// QEMU and crosvm may start vCPU threads after the device: the
        /// policy runs from the first LEVEL_SET, and a thread that appears
        /// (by either VMM's naming) gets the vCPU's hint at once.
        @Test func threadsThatAppearLaterAreAdopted() throws {
            let threads = try VCPUThreads()
            let setup = try Setup()
            let fe = try setup.frontEnd()
            #expect(try setup.scmi("alpha")?["missing_threads"] as? [Int] == [0, 1])
            #expect(SCMIBytes.status(try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x7, [0, 2_000_000]))) == 0)
            #expect(!setup.daemon.records().contains { $0.action == "apply" && threads.tids.contains($0.tid) })
            try Self.name(threads, ["CPU 0/KVM", "crosvm_vcpu1"])
            #expect(eventually(timeoutSeconds: 10) {
                setup.daemon.records().contains { $0.action == "apply" && $0.tid == threads.tids[0] && $0.utilMin == TestTopology.utilization(forKHz: 1_500_000) }
            }, "the new thread gets domain 0's hint: 2 GHz held at 1.5 GHz, the highest level util_cap 1000 allows: \(setup.daemon.records())")
            #expect(eventually(timeoutSeconds: 10) { (try? setup.scmi("alpha")?["missing_threads"] as? [Int]) == [] })
            #expect(setup.daemon.log.contains("vCPU thread found"))
            _ = consume fe
            #expect(threads.waitUntilRestored())
        }

        /// An explicit TID list instead of names; a TID that is not the
        /// front-end's own thread is refused at connect.
        @Test func explicitThreadIDs() throws {
            let threads = try VCPUThreads()
            let tids = threads.tids.map(String.init).joined(separator: ":")
            let setup = try Setup(["alpha=regs,name=alpha,tids=\(tids)", "beta=nice,name=beta,tids=1:1"])
            let fe = try setup.frontEnd()
            #expect(try setup.scmi("alpha")?["missing_threads"] as? [Int] == [])
            #expect(SCMIBytes.status(try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x7, [0, 1_000_000]))) == 0)
            #expect(eventually { setup.daemon.records().contains { $0.action == "apply" && $0.tid == threads.tids[0] && $0.utilMin == 512 } })
            let foreign = try VhostUserFrontEnd(path: setup.sockets[1], start: false)
            #expect(foreign.isClosedByPeer())
            #expect(try setup.lastFailure(1)?.contains("TID 1 of tids= is not a thread of front-end process") == true)
        }

        // MARK: Hostile front-ends

        /// One protocol violation each, on a fresh connection: the daemon
        /// closes that connection with the right reason; the other VM's
        /// device goes on answering, and the socket takes the next front-end.
        enum BadMessage: String, CaseIterable {
            case badFlags, replyFlag, oversizedPayload, truncatedPayload, unknownRequest, unofferedFeatures, kickWithoutDescriptor
            case queueSizeNotPowerOfTwo, noSuchQueue, ringOutsideMemoryTable, ringBeforeMemoryTable, regionLongerThanItsFile
            case regionNotAFile, tooManyRegions, closedInsideAMessage
        }

        static func raw(_ request: UInt32, flags: UInt32 = 1, size: UInt32, payload: [UInt8] = []) -> [UInt8] {
            [request, flags, size].flatMap { word in (0..<4).map { UInt8(truncatingIfNeeded: word >> (8 * $0)) } } + payload
        }

        /// Sends `bad` on `fe` (not started); returns what the failure must say.
        static func violate(_ bad: BadMessage, _ fe: VhostUserFrontEnd) throws -> String {
            let region = VhostUserMemoryRegion(
                guestAddress: VhostUserFrontEnd.guestBase, size: UInt64(fe.memory.byteCount), userAddress: VhostUserFrontEnd.userBase, mmapOffset: 0)
            switch bad {
            case .badFlags:
                try fe.sendRaw(raw(1, flags: 0, size: 0))
                return "header flags 0x0"
            case .replyFlag:
                try fe.sendRaw(raw(1, flags: 5, size: 0))
                return "the reply bit clear"
            case .oversizedPayload:
                try fe.sendRaw(raw(5, size: 5000))
                return "SET_MEM_TABLE payload of 5000 bytes"
            case .truncatedPayload:
                try fe.sendRaw(raw(8, size: 4, payload: [0, 0, 0, 0]))
                return "SET_VRING_NUM payload of 4 bytes"
            case .unknownRequest:
                try fe.sendRaw(raw(99, size: 0))
                return "request 99 is not supported"
            case .unofferedFeatures:
                try fe.send(.setFeatures(1 << 29))
                return "never offered"
            case .kickWithoutDescriptor:
                try fe.send(.setVringKick(index: 0, hasDescriptor: true))
                return "SET_VRING_KICK came with 0 file descriptors; expected 1"
            case .queueSizeNotPowerOfTwo:
                try fe.send(.setVringNum(index: 0, size: 3))
                return "SET_VRING_NUM 3 for virtqueue 0"
            case .noSuchQueue:
                try fe.send(.setVringNum(index: 2, size: 64))
                return "virtqueue 2, which the device does not have"
            case .ringOutsideMemoryTable:
                try fe.send(.setMemoryTable([region]), descriptors: [fe.memory.descriptor])
                try fe.send(.setVringAddress(VringAddresses(index: 0, descriptorTable: 0x1000, usedRing: 0x2000, availableRing: 0x3000)))
                return "an address is outside the memory table"
            case .ringBeforeMemoryTable:
                try fe.send(.setVringAddress(VringAddresses(index: 0, descriptorTable: 0x1000, usedRing: 0x2000, availableRing: 0x3000)))
                return "SET_VRING_ADDR before SET_MEM_TABLE"
            case .regionLongerThanItsFile:
                var long = region
                long.size *= 2
                try fe.send(.setMemoryTable([long]), descriptors: [fe.memory.descriptor])
                return "needs \(2 * fe.memory.byteCount) bytes of a file that has \(fe.memory.byteCount)"
            case .regionNotAFile:
                try fe.send(.setMemoryTable([region]), descriptors: [fe.kicks[0].descriptor])
                return "a file that has"
            case .tooManyRegions:
                try fe.sendRaw(raw(5, size: 8, payload: [9, 0, 0, 0, 0, 0, 0, 0]))
                return "9 regions"
            case .closedInsideAMessage:
                try fe.sendRaw(Array(raw(1, size: 0).prefix(6)))
                return "inside a message"
            }
        }

        @Test func protocolViolationsCloseThatConnectionOnly() throws {
            let setup = try Setup()
            let bystander = try setup.frontEnd(1)
            for bad in BadMessage.allCases {
                let expected: String
                if bad == .closedInsideAMessage {
                    // Half a header, then the front-end goes away.
                    expected = try Self.violate(bad, try setup.frontEnd(start: false))
                } else {
                    let fe = try setup.frontEnd(start: false)
                    expected = try Self.violate(bad, fe)
                    #expect(fe.isClosedByPeer(), "\(bad): the daemon must close the connection")
                }
                #expect(eventually { (try? setup.lastFailure())??.contains(expected) == true }, "\(bad): \(String(describing: try? setup.lastFailure()))")
                let answer = try bystander.call(SCMIBytes.command(SCMIBytes.base, 0x0))
                #expect(SCMIBytes.status(answer) == 0, "\(bad): the other VM's device goes on")
            }
            #expect(setup.daemon.process.isRunning)
            let next = try setup.frontEnd()
            #expect(SCMIBytes.status(try next.call(SCMIBytes.command(SCMIBytes.performance, 0x0))) == 0, "the socket takes a new front-end")
        }

        /// Rings no correct driver writes: the device fails (its connection
        /// closed, its VM detached and restored), the daemon and the other VM go on.
        enum BrokenRing: String, CaseIterable {
            case loop, bufferOutsideMemory, availableIndexJump, headOutOfRange, readableAfterWritable, indirectNotNegotiated
        }

        @Test(arguments: BrokenRing.allCases)
        func brokenRingsFailThatDeviceOnly(_ broken: BrokenRing) throws {
            let threads = try VCPUThreads()
            let tids = threads.tids.map(String.init).joined(separator: ":")
            let setup = try Setup(["alpha=regs,name=alpha,tids=\(tids)", "beta=nice,name=beta"])
            let bystander = try setup.frontEnd(1)
            let fe = try setup.frontEnd()
            #expect(SCMIBytes.status(try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x7, [0, 2_000_000]))) == 0)
            #expect(eventually { setup.daemon.records().contains { $0.action == "apply" && $0.tid == threads.tids[0] } })
            let (request, response) = VhostUserFrontEnd.buffers(slot: 0)
            let expected: String
            fe.withQueue(0) { queue in
                switch broken {
                case .loop:
                    queue.setDescriptor(0, address: request, length: 4, flags: VirtqueueDriver.nextFlag, next: 1)
                    queue.setDescriptor(1, address: request, length: 4, flags: VirtqueueDriver.nextFlag, next: 0)
                    queue.publish(0)
                case .bufferOutsideMemory:
                    queue.setRequestChain(first: 0, request: 0x1000, requestLength: 8, response: response, responseLength: 64)
                    queue.publish(0)
                case .availableIndexJump:
                    queue.setAvailableIndex(queue.availableIndex &+ 300)
                case .headOutOfRange:
                    queue.publish(999)
                case .readableAfterWritable:
                    queue.setDescriptor(0, address: response, length: 64, flags: VirtqueueDriver.writeFlag | VirtqueueDriver.nextFlag, next: 1)
                    queue.setDescriptor(1, address: request, length: 8, flags: 0, next: 0)
                    queue.publish(0)
                case .indirectNotNegotiated:
                    queue.setDescriptor(0, address: request, length: 32, flags: VirtqueueDriver.indirectFlag, next: 0)
                    queue.publish(0)
                }
            }
            switch broken {
            case .loop: expected = "the chain at head 0 has more than 8 segments"
            case .bufferOutsideMemory: expected = "a buffer at 0x1000 (8 bytes) outside guest memory"
            case .availableIndexJump: expected = "avail.idx"
            case .headOutOfRange: expected = "descriptor index 999 outside a table of 256"
            case .readableAfterWritable: expected = "a readable buffer after a writable one"
            case .indirectNotNegotiated: expected = "uses an indirect table without INDIRECT_DESC"
            }
            try fe.kick()
            #expect(fe.isClosedByPeer(), "\(broken)")
            #expect(eventually { (try? setup.lastFailure())??.contains("broken virtqueue: ") == true })
            let failure = try setup.lastFailure()
            #expect(failure?.contains(expected) == true, "\(String(describing: failure))")
            #expect(threads.waitUntilRestored(), "the failed device's VM is restored")
            #expect(try setup.status().vms["alpha"] == nil && setup.daemon.process.isRunning)
            #expect(SCMIBytes.status(try bystander.call(SCMIBytes.command(SCMIBytes.base, 0x1))) == 0, "the other VM goes on")
            let again = try setup.frontEnd()
            #expect(SCMIBytes.status(try again.call(SCMIBytes.command(SCMIBytes.base, 0x0))) == 0, "and the socket takes a new front-end")
        }

        /// Malformed SCMI inside a well-formed ring is the guest's business:
        /// it gets its status and the device stays.
        @Test func malformedSCMIIsAnsweredNotFatal() throws {
            let setup = try Setup()
            let fe = try setup.frontEnd()
            let garbage = try fe.call([0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3])
            #expect(SCMIBytes.status(garbage) == -10 && garbage.count == 8, "PROTOCOL_ERROR, status only")
            #expect(SCMIBytes.status(try fe.call(SCMIBytes.command(0x15, 0x0))) == -1, "unknown protocol: NOT_SUPPORTED")
            #expect(SCMIBytes.status(try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x7, [9, 1_000_000]))) == -4, "NOT_FOUND")
            #expect(SCMIBytes.status(try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x7, [0, 1_234_567]))) == -5, "OUT_OF_RANGE")
            let short = try fe.call(SCMIBytes.command(SCMIBytes.performance, 0x3, [0]), responseRoom: 8)
            #expect(SCMIBytes.status(short) == -7, "no room for the values: COMMS_ERROR")
            let scmi = try #require(try setup.scmi("alpha"))
            #expect(scmi["messages"] as? Int == 5 && scmi["errors"] as? Int == 5)
            #expect(scmi["error_statuses"] as? [String: Int] == ["PROTOCOL_ERROR": 1, "NOT_SUPPORTED": 1, "NOT_FOUND": 1, "OUT_OF_RANGE": 1, "COMMS_ERROR": 1])
            #expect(try setup.lastFailure() == nil)
        }
    }
}
