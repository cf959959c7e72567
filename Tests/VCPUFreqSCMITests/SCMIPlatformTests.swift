import Testing
import VCPUFreqCore
import VCPUFreqSCMI

/// Host shapes as SCMI sees them: the VM profile's domains with their tables.
enum Shapes {
    static let little: [Int] = [300_000, 574_000, 738_000, 930_000, 1_098_000, 1_197_000, 1_328_000, 1_401_000, 1_598_000, 1_704_000, 1_803_000]
    static let mid: [Int] = [400_000, 553_000, 696_000, 799_000, 910_000, 1_024_000, 1_197_000, 1_328_000, 1_491_000, 1_663_000, 1_836_000, 1_999_000, 2_130_000, 2_253_000]
    static let big: [Int] = [500_000, 851_000, 984_000, 1_106_000, 1_277_000, 1_426_000, 1_582_000, 1_745_000, 1_826_000, 2_048_000, 2_188_000, 2_252_000, 2_401_000, 2_507_000, 2_630_000, 2_704_000, 2_802_000]

    /// The 4+2+2 phone; `domains` per vCPU (nil: one per cluster).
    static func phone(utilCap: Int = 1024, domains: [Int]? = nil, bigName: String = "big") throws -> (VMModel, HostTopology) {
        let host = HostTopology(
            name: "phone", governor: .schedutil,
            clusters: [
                HostCluster(name: "little", cpus: CPUList(0...3), capacity: 160, frequenciesKHz: little),
                HostCluster(name: "mid", cpus: CPUList(4...5), capacity: 498, frequenciesKHz: mid),
                HostCluster(name: bigName, cpus: CPUList(6...7), capacity: 1024, frequenciesKHz: big),
            ])
        let profile = VMProfile(
            name: "android", vcpuCount: 8, clusters: ["little", "little", "little", "little", "mid", "mid", bigName, bigName],
            domains: domains, utilCap: utilCap, headroom: .none)
        return (try Topology(host: host, vms: [profile]).model(), host)
    }

    static func platform(utilCap: Int = 1024, domains: [Int]? = nil, bigName: String = "big") throws -> SCMIPlatform {
        let (model, host) = try phone(utilCap: utilCap, domains: domains, bigName: bigName)
        return SCMIPlatform(model: model, host: host)
    }
}

/// The SCMI platform answered message by message as Linux's SCMI core,
/// perf protocol and scmi-cpufreq ask (docs/scmi.md): every value read back
/// from the response bytes.
@Suite struct SCMIPlatformTests {
    // MARK: Base protocol

    @Test func baseDiscovery() throws {
        var agent = Agent(try Shapes.platform())
        let version = agent.base(0x0)
        #expect(version.status == 0 && version.values.count == 4 && version.word(0) == 0x20000)
        let attributes = agent.base(0x1)
        #expect(attributes.status == 0 && attributes.values == [1, 1, 0, 0], "one protocol besides base, one agent")
        let vendor = agent.base(0x3)
        #expect(vendor.values.count == 16 && vendor.string(at: 0, count: 16) == "vcpufreq" && vendor.values[15] == 0)
        let subVendor = agent.base(0x4)
        #expect(subVendor.values.count == 16 && subVendor.string(at: 0, count: 16) == "virtio-scmi")
        #expect(agent.base(0x5).word(0) == 0x100)
        let list = agent.base(0x6, [0])
        #expect(list.status == 0 && list.values == Agent.bytes([1, 0x13]), "one protocol: performance, packed one byte per id")
        let rest = agent.base(0x6, [1])
        #expect(rest.status == 0 && rest.values == Agent.bytes([0]))
        #expect(agent.base(0x6, [2]).status == SCMIStatus.invalidParameters.code)
        let platformAgent = agent.base(0x7, [0])
        #expect(platformAgent.word(0) == 0 && platformAgent.string(at: 4, count: 16) == "platform")
        let me = agent.base(0x7, [0xFFFF_FFFF])
        #expect(me.word(0) == 1 && me.string(at: 4, count: 16) == "OSPM")
        #expect(agent.base(0x7, [2]).status == SCMIStatus.notFound.code)
    }

    @Test(arguments: [UInt32(0x0), 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7])
    func baseMessagesAreAdvertised(message: UInt32) throws {
        var agent = Agent(try Shapes.platform())
        let response = agent.base(0x2, [message])
        #expect(response.status == 0 && response.values == [0, 0, 0, 0])
    }

    /// BASE_NOTIFY_ERRORS, SET_DEVICE_PERMISSIONS, RESET_AGENT_CONFIGURATION and beyond.
    @Test(arguments: [UInt32(0x8), 0x9, 0xB, 0x10, 0xFF, 0x100, 0xFFFF_FFFF])
    func unknownBaseMessagesAreNotFoundAndRefused(message: UInt32) throws {
        var agent = Agent(try Shapes.platform())
        #expect(agent.base(0x2, [message]).status == SCMIStatus.notFound.code)
        if message <= 0xFF {
            let refused = agent.base(UInt8(message))
            // A command the protocol does not implement: NOT_FOUND (Arm's compliance suite, test_b004).
            #expect(refused.status == SCMIStatus.notFound.code && refused.values.isEmpty)
        }
    }

    // MARK: Performance protocol: discovery

    @Test func performanceVersionAndAttributes() throws {
        var agent = Agent(try Shapes.platform())
        #expect(agent.perf(0x0).word(0) == 0x30000)
        let attributes = agent.perf(0x1)
        #expect(attributes.status == 0 && attributes.values.count == 16)
        #expect(attributes.half(0) == 3, "three domains")
        #expect(attributes.half(2) == 0, "abstract power scale, no mW/uW flag")
        #expect(attributes.word(1) == 0 && attributes.word(2) == 0 && attributes.word(3) == 0, "no statistics shared memory")
    }

    /// Linux enables notifications only when PROTOCOL_MESSAGE_ATTRIBUTES of
    /// NOTIFY_LEVEL / NOTIFY_LIMITS succeeds: the platform sends none, so it
    /// must not advertise them (virtio-scmi: only with P2A and then supported).
    @Test func messageAttributesAdvertiseWhatIsServedOnly() throws {
        var agent = Agent(try Shapes.platform())
        for message: UInt32 in [0x0, 0x1, 0x2, 0x3, 0x4, 0x5, 0x6, 0x7, 0x8, 0xC] {
            let response = agent.perf(0x2, [message])
            #expect(response.status == 0 && response.word(0) == 0, "message 0x\(String(message, radix: 16))")
        }
        for message: UInt32 in [0x9, 0xA, 0xB, 0xD, 0x10, 0x1_0007] {
            #expect(agent.perf(0x2, [message]).status == SCMIStatus.notFound.code, "message 0x\(String(message, radix: 16))")
        }
        // Issued anyway: NOT_FOUND, as PROTOCOL_MESSAGE_ATTRIBUTES says (test_d004; found by the scmi fuzz target).
        for message: UInt8 in [0x9, 0xA, 0xB, 0x10, 0xD, 0xFF] {
            let refused = agent.perf(message, [0, 1])
            #expect(refused.status == SCMIStatus.notFound.code && refused.values.isEmpty, "message 0x\(String(message, radix: 16))")
        }
    }

    @Test func domainAttributes() throws {
        var agent = Agent(try Shapes.platform())
        for (domain, (name, table)) in [("little", Shapes.little), ("mid", Shapes.mid), ("big", Shapes.big)].enumerated() {
            let response = agent.perf(0x3, [UInt32(domain)])
            #expect(response.status == 0 && response.values.count == 32)
            let flags = response.word(0)
            #expect(flags & (1 << 31) != 0 && flags & (1 << 30) != 0, "SET_LIMITS and SET_PERF_LEVEL")
            #expect(flags & (1 << 29 | 1 << 28 | 1 << 27 | 1 << 26 | 1 << 25) == 0, "no notifications, fastchannels, extended names or level indexing")
            #expect(response.word(1) == 1000, "rate_limit_us = the profile's min_interval_us")
            // Sustained = the top level: multiplier 1000 (level = kHz) and no level above it (no turbo).
            #expect(response.word(2) == UInt32(table.last!) && response.word(3) == UInt32(table.last!))
            #expect(response.string(at: 16, count: 16) == name)
        }
        #expect(agent.perf(0x3, [3]).status == SCMIStatus.notFound.code)
        #expect(agent.perf(0x3, [0xFFFF_FFFF]).status == SCMIStatus.notFound.code)
    }

    @Test func longNamesUseExtendedNames() throws {
        let long = "performance-cores-cluster-of-the-phone"
        var agent = Agent(try Shapes.platform(bigName: long))
        let attributes = agent.perf(0x3, [2])
        #expect(attributes.word(0) & (1 << 26) != 0)
        #expect(attributes.string(at: 16, count: 16) == String(long.prefix(15)), "the short name is cut to 15 bytes and NUL")
        let name = agent.perf(0xC, [2])
        #expect(name.status == 0 && name.values.count == 68 && name.word(0) == 0)
        #expect(name.string(at: 4, count: 64) == long)
        #expect(agent.perf(0xC, [0]).string(at: 4, count: 64) == "little")
        #expect(agent.perf(0xC, [3]).status == SCMIStatus.notFound.code)
    }

    @Test func domainsFollowTheProfileAndShareClusterNames() throws {
        // vCPUs 6 and 7 model the same cluster in two domains; 4 and 5 share one.
        let platform = try Shapes.platform(domains: [0, 0, 0, 0, 1, 1, 2, 3])
        #expect(platform.domains.map(\.vcpus) == [[0, 1, 2, 3], [4, 5], [6], [7]])
        #expect(platform.domains.map { String(decoding: $0.name, as: UTF8.self) } == ["little", "mid", "big-2", "big-3"])
        #expect(platform.domains.map(\.levelsKHz) == [Shapes.little, Shapes.mid, Shapes.big, Shapes.big].map { $0.map(UInt32.init) })
    }

    // MARK: DESCRIBE_LEVELS

    /// Linux's iterator, the 128-byte virtio limit: at most 10 12-byte entries per reply.
    @Test func describeLevelsPagesWithinTheReplySize() throws {
        var agent = Agent(try Shapes.platform())
        for (domain, table) in [Shapes.little, Shapes.mid, Shapes.big].enumerated() {
            let described = agent.describeAllLevels(domain: UInt32(domain))
            let all = try #require(described)
            #expect(all.levels == table.map(UInt32.init))
            #expect(all.replies == (table.count + 9) / 10)
            #expect(zip(all.power, all.power.dropFirst()).allSatisfy { $0 < $1 }, "power increases with the level")
        }
        let first = agent.perf(0x4, [2, 0])
        #expect(first.half(0) == 10 && first.half(2) == 7)
        #expect(first.values[12] == 50 && first.values[13] == 0, "transition latency 50 us")
        let last = agent.perf(0x4, [2, 16])
        #expect(last.half(0) == 1 && last.half(2) == 0 && last.word(1) == 2_802_000)
        // Power: capacity x (f / fmax)^2 x 1000 / 1024 at the top: 1000 for big, 156 for little.
        #expect(last.word(2) == 1000)
        #expect(agent.perf(0x4, [0, 10]).word(2) == 156)
    }

    /// A guest buffer smaller than the transport's limit gets fewer entries
    /// per reply, never a reply that does not fit.
    @Test(arguments: [8 + 4 + 12, 8 + 40, 8 + 64, 8 + 100, 8 + 128, 8 + 512])
    func describeLevelsFitsTheGuestBuffer(room: Int) throws {
        var agent = Agent(try Shapes.platform())
        let perReply = min((room - 8 - 4) / 12, 10)
        let described = agent.describeAllLevels(domain: 2, room: room)
        let all = try #require(described)
        #expect(all.levels == Shapes.big.map(UInt32.init))
        #expect(all.replies == (Shapes.big.count + perReply - 1) / perReply)
    }

    @Test func describeLevelsRefusesWhatItCannotAnswer() throws {
        var agent = Agent(try Shapes.platform())
        #expect(agent.perf(0x4, [2, 17]).status == SCMIStatus.invalidParameters.code, "index past the table")
        #expect(agent.perf(0x4, [3, 0]).status == SCMIStatus.notFound.code)
        let tooSmall = agent.perf(0x4, [2, 0], room: 8 + 4 + 11)
        #expect(tooSmall.status == SCMIStatus.communicationsError.code && tooSmall.values.isEmpty, "no room for one entry")
        #expect(agent.platform.counters.shortBuffers == 1)
    }

    // MARK: LEVEL_SET / LEVEL_GET / LIMITS

    @Test func levelSetBecomesARequestForTheDomain() throws {
        var agent = Agent(try Shapes.platform())
        let set = agent.perf(0x7, [1, 1_491_000])
        #expect(set.status == 0 && set.values.isEmpty)
        #expect(set.outcome.request == GuestRequest(vcpu: 4, performanceKHz: 1_491_000, source: .scmi), "the domain's first vCPU")
        #expect(agent.platform.requestedIndex == [nil, 8, nil] && agent.platform.submittedIndex == [nil, 8, nil])
        let again = agent.perf(0x7, [1, 1_491_000])
        #expect(again.outcome.request != nil, "a LEVEL_SET always reaches the policy (it applies its own rate limit)")
        #expect(agent.platform.counters.levelSets == 2)
    }

    @Test func levelSetOutsideTheTableIsOutOfRange() throws {
        var agent = Agent(try Shapes.platform())
        for level: UInt32 in [0, 1, 299_999, 300_001, 1_803_001, 5_000_000, 0xFFFF_FFFF] {
            let response = agent.perf(0x7, [0, level])
            #expect(response.status == SCMIStatus.outOfRange.code && response.values.isEmpty && response.outcome.request == nil, "\(level)")
        }
        #expect(agent.perf(0x7, [3, 300_000]).status == SCMIStatus.notFound.code)
        #expect(agent.platform.requestedIndex == [nil, nil, nil])
    }

    @Test func levelGetAnswersFromTheHostCache() throws {
        var agent = Agent(try Shapes.platform())
        agent.host.currentKHz = [0: 1_111_000, 4: 2_222_000, 6: 1_826_000]
        #expect(agent.perf(0x8, [0]).word(0) == 1_111_000)
        #expect(agent.perf(0x8, [1]).word(0) == 2_222_000)
        #expect(agent.perf(0x8, [2]).word(0) == 1_826_000)
        #expect(agent.host.asked == [0, 4, 6])
        #expect(agent.perf(0x8, [3]).status == SCMIStatus.notFound.code)
        #expect(agent.host.asked == [0, 4, 6], "an unknown domain never reaches the host")
    }

    /// util_cap 512: big's levels above 1277000 kHz would need more than 512
    /// (1426000 x 1024 / 2802000 = 521.1): the guest can neither get them
    /// nor raise its limit past them.
    @Test func limitsAreBoundedByTheOperatorsCap() throws {
        var agent = Agent(try Shapes.platform(utilCap: 512))
        #expect(agent.platform.domains.map(\.capIndex) == [10, 13, 4])
        let limits = agent.perf(0x6, [2])
        #expect(limits.status == 0 && limits.word(0) == 1_277_000 && limits.word(1) == 500_000, "max first, then min")
        let top = agent.perf(0x7, [2, 2_802_000])
        #expect(top.status == 0 && top.outcome.request?.performanceKHz == 1_277_000, "a level above the cap is held at the cap")
        #expect(agent.perf(0x5, [2, 2_802_000, 0]).status == 0)
        #expect(agent.perf(0x6, [2]).word(0) == 1_277_000, "the guest's max never passes the cap")
    }

    @Test func limitsMoveTheAppliedLevel() throws {
        var agent = Agent(try Shapes.platform())
        #expect(agent.perf(0x5, [2, 2_048_000, 0]).outcome.request == nil, "limits before any level that ask for nothing change nothing")
        #expect(agent.perf(0x7, [2, 2_630_000]).outcome.request?.performanceKHz == 2_048_000, "held at the guest's max")
        let raised = agent.perf(0x5, [2, 2_802_000, 0])
        #expect(raised.status == 0 && raised.outcome.request?.performanceKHz == 2_630_000, "max raised: the requested level returns")
        let floor = agent.perf(0x5, [2, 0, 2_704_000])
        #expect(floor.outcome.request?.performanceKHz == 2_704_000, "min raised above the level")
        #expect(agent.perf(0x5, [2, 0, 2_704_000]).outcome.request == nil, "same limits, nothing new for the policy")
        let limits = agent.perf(0x6, [2])
        #expect(limits.word(0) == 2_802_000 && limits.word(1) == 2_704_000)
        #expect(agent.platform.counters.limitsSets == 4)
        var fresh = Agent(try Shapes.platform())
        #expect(fresh.perf(0x5, [0, 0, 738_000]).outcome.request?.performanceKHz == 738_000, "a floor before any level is a request")
    }

    @Test func badLimitsAreRefusedAndChangeNothing() throws {
        var agent = Agent(try Shapes.platform())
        #expect(agent.perf(0x5, [0, 0, 0]).status == SCMIStatus.invalidParameters.code, "both zero says nothing")
        #expect(agent.perf(0x5, [0, 738_000, 1_598_000]).status == SCMIStatus.invalidParameters.code, "min above max")
        #expect(agent.perf(0x5, [0, 738_001, 0]).status == SCMIStatus.outOfRange.code)
        #expect(agent.perf(0x5, [0, 0, 1]).status == SCMIStatus.outOfRange.code)
        #expect(agent.perf(0x5, [3, 738_000, 300_000]).status == SCMIStatus.notFound.code)
        let limits = agent.perf(0x6, [0])
        #expect(limits.word(0) == 1_803_000 && limits.word(1) == 300_000)
    }

    // MARK: Malformed messages

    /// Each wrong-length message of each protocol: PROTOCOL_ERROR, status only.
    @Test func wrongParameterCountsAreProtocolErrors() throws {
        var agent = Agent(try Shapes.platform())
        let base: [(UInt8, Int)] = [(0x0, 0), (0x1, 0), (0x2, 1), (0x3, 0), (0x4, 0), (0x5, 0), (0x6, 1), (0x7, 1)]
        let perf: [(UInt8, Int)] = [(0x0, 0), (0x1, 0), (0x2, 1), (0x3, 1), (0x4, 2), (0x5, 3), (0x6, 1), (0x7, 2), (0x8, 1), (0xC, 1)]
        for (protocolID, messages) in [(UInt8(0x10), base), (0x13, perf)] {
            for (message, count) in messages {
                for wrong in [count + 1, count + 2] + (count > 0 ? [count - 1] : []) {
                    let response = agent.call(protocolID, message, Array(repeating: 0, count: wrong))
                    #expect(response.status == SCMIStatus.protocolError.code && response.values.isEmpty, "0x\(protocolID) 0x\(message) with \(wrong)")
                }
                // A byte short of a whole parameter.
                let header = Agent.header(protocol: protocolID, message: message)
                let odd = agent.raw(Agent.bytes([header] + Array(repeating: 0, count: count)) + [0])
                #expect(odd.status == SCMIStatus.protocolError.code && odd.header == header)
            }
        }
    }

    @Test func malformedHeadersAndFramesAreAnsweredNotTrusted() throws {
        var agent = Agent(try Shapes.platform())
        let short = agent.raw([0x13, 0x4C])
        #expect(short.status == SCMIStatus.protocolError.code && short.header == 0, "no header to echo: zero")
        #expect(agent.raw([]).status == SCMIStatus.protocolError.code)
        let reserved = Agent.header(protocol: 0x13, message: 0x0) | 1 << 28
        #expect(agent.raw(Agent.bytes([reserved])).status == SCMIStatus.protocolError.code)
        for type: UInt32 in [1, 2, 3] {
            let header = Agent.header(protocol: 0x13, message: 0x0, type: type)
            let response = agent.raw(Agent.bytes([header]))
            #expect(response.status == SCMIStatus.protocolError.code && response.header == header, "type \(type)")
        }
        // The transport copied less than the guest sent: answered, as malformed.
        let truncated = agent.raw(Agent.bytes([Agent.header(protocol: 0x13, message: 0x7), 2, 500_000]), copied: 8)
        #expect(truncated.status == SCMIStatus.protocolError.code && truncated.outcome.request == nil)
        for protocolID: UInt8 in [0x00, 0x11, 0x12, 0x14, 0x15, 0x19, 0xFF] {
            #expect(agent.call(protocolID, 0x0).status == SCMIStatus.notSupported.code, "protocol 0x\(String(protocolID, radix: 16))")
        }
    }

    @Test func responsesThatDoNotFitAreNeverWrittenPastTheBuffer() throws {
        var agent = Agent(try Shapes.platform())
        for room in 0..<8 {
            let response = agent.perf(0x0, room: room)
            #expect(response.outcome.responseLength == 0, "room \(room)")
        }
        let noValues = agent.perf(0x3, [0], room: 8 + 31)
        #expect(noValues.status == SCMIStatus.communicationsError.code && noValues.values.isEmpty)
        let name = agent.perf(0xC, [0], room: 8 + 67)
        #expect(name.status == SCMIStatus.communicationsError.code)
        #expect(agent.perf(0x3, [0], room: 8 + 32).status == 0)
    }

    /// Random messages: never a trap, every response the status it reports
    /// (status-only unless SUCCESS), within the buffer, counters consistent.
    @Test func randomMessagesNeverBreakThePlatform() throws {
        var agent = Agent(try Shapes.platform(utilCap: 700))
        var state: UInt64 = 0x5C31_0001
        func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        let statuses = Set(SCMIStatus.allCases.map(\.rawValue))
        let protocols: [UInt8] = [0x10, 0x13, 0x13, 0x13, 0x14]
        for _ in 0..<20_000 {
            let shape = next()
            var header = Agent.header(protocol: protocols[Int(shape % 5)], message: UInt8((shape >> 8) % 16), token: UInt32(truncatingIfNeeded: shape >> 16))
            if shape >> 40 % 16 == 0 { header |= UInt32(truncatingIfNeeded: next()) & 0xF000_0300 }
            let count = Int((shape >> 24) % 5)
            var words = [header]
            for _ in 0..<count {
                let choice = next()
                // Domain ids, table levels and noise in equal measure.
                switch choice % 3 {
                case 0: words.append(UInt32(truncatingIfNeeded: choice >> 8) % 5)
                case 1:
                    let table = [Shapes.little, Shapes.mid, Shapes.big][Int(choice >> 8) % 3]
                    words.append(UInt32(table[Int(choice >> 12) % table.count]))
                default: words.append(UInt32(truncatingIfNeeded: choice >> 16))
                }
            }
            var bytes = Agent.bytes(words)
            if shape >> 60 == 0 { bytes.removeLast(Int(shape >> 56 & 3)) }
            let room = shape >> 50 % 8 == 0 ? Int(next() % 140) : 8 + 128
            let response = agent.raw(bytes, room: room)
            guard response.outcome.responseLength >= 8 else { continue }
            #expect(statuses.contains(response.status))
            #expect(response.status == response.outcome.status.rawValue)
            if response.status != 0 { #expect(response.values.isEmpty) }
            if let request = response.outcome.request {
                #expect(response.status == 0)
                let domain = try #require(agent.platform.domains.first { $0.vcpus[0] == request.vcpu })
                #expect(domain.levelsKHz.contains(request.performanceKHz!) && request.performanceKHz! <= domain.capKHz)
            }
        }
        let counters = agent.platform.counters
        #expect(counters.messages == 20_000 && counters.statuses.reduce(0, +) == 20_000)
        #expect(counters.errors > 0 && counters[.success] > 0)
        for d in agent.platform.domains.indices {
            #expect(agent.platform.minimumIndex[d] <= agent.platform.maximumIndex[d])
            #expect(agent.platform.maximumIndex[d] <= agent.platform.domains[d].capIndex)
        }
    }
}
