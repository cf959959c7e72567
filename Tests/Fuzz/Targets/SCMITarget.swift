// The SCMI platform (SCMIPlatform, docs/scmi.md "The SCMI platform") on
// whatever a guest's SCMI agent writes into a command buffer: any header
// (protocol, message id, type, token, reserved bits), any parameter bytes,
// a message longer than the transport's copy, any response buffer size; on
// the performance domains of every fixture VM (its cap and rate limit
// possibly replaced), as the daemon wires it (SCMIDevice: the platform's
// requests go to the VM's session, LEVEL_GET reads the session's cached
// performance, here a fake that applies each request as the policy would).
//
// Asserted for every message, against a model written from DEN0056 and
// docs/scmi.md (not from the platform's code):
// - exactly one response: at most the buffer and at most header + status +
//   the 128 bytes virtio-scmi allows; nothing when the buffer cannot hold
//   header and status; otherwise the request's header echoed unchanged
//   (token and message id included; a zero header when the request has
//   none), then a status that is an SCMI status and the one the model
//   gives: PROTOCOL_ERROR for a short, longer-than-copied, reserved-bit or
//   non-command message or a wrong parameter count, NOT_SUPPORTED for an
//   unknown protocol, NOT_FOUND for a command the protocol does not
//   implement (DEN0056 as Arm's compliance suite checks it), an unknown
//   domain, unadvertised messages in PROTOCOL_MESSAGE_ATTRIBUTES and unknown agents,
//   INVALID_PARAMETERS / OUT_OF_RANGE for bad skips, levels and limits,
//   COMMS_ERROR when a success does not fit; a non-SUCCESS carries only
//   its status; the status the platform reports is the one it wrote;
// - state: limits stay levels of the table with min <= max <= the cap;
//   an accepted LIMITS_SET sets what it asked (0: unchanged) held at the
//   cap; an accepted LEVEL_SET becomes a request for the domain's first
//   vCPU at its level held within the limits, a LIMITS_SET one exactly when
//   it moves the applied level; no other message changes anything or makes
//   a request; every request is a level of that domain's table, never above
//   its cap;
// - answers: LIMITS_GET the limits last set, LEVEL_GET the host's current
//   level of the domain (the last request applied), DESCRIBE_LEVELS the
//   table from `first` in order with the right remainder, and paging it from
//   0 with any buffer size returns every level exactly once;
// - counters: messages and per-status counts exact, short buffers counted.
import VCPUFreqCore
import VCPUFreqSCMI

enum SCMITarget {
    /// The session as SCMIDevice wires it: a request becomes the domain's
    /// current performance (the policy within the cap), LEVEL_GET reads it.
    final class Host: SCMIPerformanceHost {
        var current: [Int: UInt32] = [:]
        func currentPerformanceKHz(vcpu: Int) -> UInt32 { current[vcpu] ?? 0 }
    }

    /// What docs/scmi.md says the platform's state is.
    struct Model {
        var minimum: [Int]
        var maximum: [Int]
        var requested: [Int?]
        var submitted: [Int?]
        var statuses = Array(repeating: UInt64(0), count: SCMIStatus.allCases.count)
        var messages: UInt64 = 0
        var shortBuffers: UInt64 = 0
    }

    static let base: UInt8 = 0x10, performance: UInt8 = 0x13
    /// Parameter words of each message served (docs/scmi.md's tables).
    static let baseWords: [UInt8: Int] = [0: 0, 1: 0, 2: 1, 3: 0, 4: 0, 5: 0, 6: 1, 7: 1]
    static let performanceWords: [UInt8: Int] = [0: 0, 1: 0, 2: 1, 3: 1, 4: 2, 5: 3, 6: 1, 7: 2, 8: 1, 0xC: 1]
    /// The transport's response limit after the status (VIRTIO_SCMI_MAX_MSG_SIZE).
    static let maximumReturn = 128

    nonisolated(unsafe) static let request = UnsafeMutableRawBufferPointer.allocate(byteCount: 512, alignment: 8)
    nonisolated(unsafe) static let response = UnsafeMutableRawBufferPointer.allocate(byteCount: 528, alignment: 8)

    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let fixture = input.vmAndHost()
        var vm = fixture.vm
        if input.bool() { vm.utilCap = Int(input.integer(Int16.self)) }
        var platform = SCMIPlatform(model: vm, host: fixture.host)
        let domains = platform.domains
        invariant(!domains.isEmpty && domains.count == vm.domains.count, "\(domains.count) SCMI domains for \(vm.domains.count) performance domains")
        for (index, domain) in domains.enumerated() {
            invariant(domain.vcpus == vm.domains[index].sorted(), "domain \(index) has vCPUs \(domain.vcpus), the profile \(vm.domains[index])")
            invariant(!domain.levelsKHz.isEmpty && zip(domain.levelsKHz, domain.levelsKHz.dropFirst()).allSatisfy { $0 < $1 },
                "domain \(index) levels \(domain.levelsKHz) are not strictly ascending")
            invariant(domain.levelsKHz.indices.contains(domain.capIndex), "domain \(index) cap index \(domain.capIndex)")
        }
        let session = Host()
        var model = Model(
            minimum: Array(repeating: 0, count: domains.count), maximum: domains.map(\.capIndex),
            requested: Array(repeating: nil, count: domains.count), submitted: Array(repeating: nil, count: domains.count))

        var steps = 0
        while !input.isExhausted, steps < 128 {
            steps += 1
            let room = input.byte() < 224 ? 8 + maximumReturn : Int(input.byte()) * 2  // at most 510
            // Paging a whole table is up to 64 messages: now and then.
            if input.byte() % 32 == 0 {
                describeAll(&platform, &model, session, domain: input.integer(), room: room)
                continue
            }
            let message = input.chunk(maximum: 256)
            // Mostly a message as copied; sometimes one longer than the copy.
            let length = input.byte() < 248 ? message.count : message.count + 1 + input.index(below: 600)
            send(&platform, &model, session, message, length: length, room: room)
        }
    }

    /// One message through the platform, checked against the model; returns
    /// the response's return values when it succeeded.
    @discardableResult
    static func send(
        _ platform: inout SCMIPlatform, _ model: inout Model, _ session: Host, _ message: UnsafeRawBufferPointer,
        length: Int, room: Int
    ) -> [UInt8]? {
        let copy = UnsafeMutableRawBufferPointer(rebasing: request[0..<message.count])
        copy.copyMemory(from: message)
        let out = UnsafeMutableRawBufferPointer(rebasing: response[0..<min(room, response.count)])
        // 16 bytes after the buffer: a write past its end lands there first.
        let canary = UnsafeMutableRawBufferPointer(rebasing: response[out.count..<min(out.count + 16, response.count)])
        canary.initializeMemory(as: UInt8.self, repeating: 0xA5)
        let valueRoom = min(max(out.count - 8, 0), maximumReturn)
        let expected = expect(model, platform.domains, UnsafeRawBufferPointer(copy), length: length, valueRoom: valueRoom)
        // Only the levels and limits (a copy of the whole platform would copy its counters at each message).
        let before = expected.change == nil ? (platform.minimumIndex, platform.maximumIndex, platform.requestedIndex, platform.submittedIndex) : nil
        let outcome = platform.handle(request: UnsafeRawBufferPointer(copy), requestLength: length, response: out, host: session)
        invariant(canary.allSatisfy { $0 == 0xA5 }, "the response was written past its \(out.count)-byte buffer")

        // What fits: a success whose values do not fit is COMMS_ERROR.
        var status = expected.status
        if status == .success && expected.valueBytes > valueRoom { status = .communicationsError }
        let fits = out.count >= 8
        model.messages &+= 1
        model.statuses[status.counterIndex] &+= 1
        if !fits || status != expected.status { model.shortBuffers &+= 1 }
        let header = message.count >= 4 && length >= 4 ? message.loadUnaligned(as: UInt32.self) : 0

        invariant(outcome.status == status, "\(describe(message, length)) answered \(outcome.status), expected \(status)")
        if fits {
            let size = status == .success ? 8 + expected.valueBytes : 8
            invariant(outcome.responseLength == size, "\(describe(message, length)): a \(outcome.responseLength)-byte response, expected \(size)")
            invariant(outcome.responseLength <= 8 + maximumReturn, "a response of \(outcome.responseLength) bytes")
            if outcome.responseLength >= 8 {
                let echoed = out.loadUnaligned(as: UInt32.self)
                let written = Int32(bitPattern: out.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                invariant(echoed == header, "the response's header 0x\(String(echoed, radix: 16)) is not the request's 0x\(String(header, radix: 16))")
                invariant(SCMIStatus(rawValue: written) == outcome.status, "status word \(written) written, \(outcome.status) reported")
            }
        } else {
            invariant(outcome.responseLength == 0, "a \(outcome.responseLength)-byte response in a \(out.count)-byte buffer")
        }

        // State and requests.
        if status == .success, let change = expected.change {
            apply(change, &model, platform.domains, outcome: outcome, session: session)
        } else {
            invariant(outcome.request == nil, "\(describe(message, length)) (\(status)) made a request \(String(describing: outcome.request))")
        }
        if let before {
            invariant(before.0 == platform.minimumIndex && before.1 == platform.maximumIndex
                && before.2 == platform.requestedIndex && before.3 == platform.submittedIndex,
                "\(describe(message, length)) (\(status)) changed the platform's levels or limits")
        }
        checkState(platform, model)
        guard status == .success, outcome.responseLength >= 8 else { return nil }
        let values = Array(UnsafeRawBufferPointer(rebasing: out[8..<outcome.responseLength]))
        if let check = expected.answer { check(values, model, session) }
        return values
    }

    /// A state change an accepted message makes.
    enum Change {
        case limits(domain: Int, maximum: Int?, minimum: Int?)
        case level(domain: Int, index: Int)
    }

    struct Expectation {
        var status: SCMIStatus
        /// Bytes of return values a success carries.
        var valueBytes = 0
        var change: Change?
        var answer: (([UInt8], Model, Host) -> Void)?
    }

    /// The model: what docs/scmi.md gives for this message in this state.
    /// `valueRoom`: bytes of return values the buffer and the transport allow.
    static func expect(
        _ model: Model, _ domains: [SCMIPerformanceDomain], _ message: UnsafeRawBufferPointer, length: Int, valueRoom: Int
    ) -> Expectation {
        guard message.count >= 4, length >= 4, length == message.count else { return Expectation(status: .protocolError) }
        let header = message.loadUnaligned(as: UInt32.self)
        let messageID = UInt8(header & 0xFF), type = (header >> 8) & 0x3, protocolID = UInt8((header >> 10) & 0xFF)
        guard header >> 28 == 0, type == 0 else { return Expectation(status: .protocolError) }
        let parameterBytes = message.count - 4
        func word(_ index: Int) -> UInt32 { message.loadUnaligned(fromByteOffset: 4 + 4 * index, as: UInt32.self) }
        switch protocolID {
        case base:
            // A command the protocol does not implement is NOT_FOUND (Arm's SCMI compliance suite, test_b004/test_d004).
            guard let words = baseWords[messageID] else { return Expectation(status: .notFound) }
            guard parameterBytes == 4 * words else { return Expectation(status: .protocolError) }
            switch messageID {
            case 0: return Expectation(status: .success, valueBytes: 4, answer: { v, _, _ in expectWord(v, 0, 0x20000, "base PROTOCOL_VERSION") })
            case 1: return Expectation(status: .success, valueBytes: 4, answer: { v, _, _ in expectWord(v, 0, 0x0101, "base PROTOCOL_ATTRIBUTES") })
            case 2: return Expectation(status: word(0) <= 7 ? .success : .notFound, valueBytes: 4)
            case 3, 4: return Expectation(status: .success, valueBytes: 16)
            case 5: return Expectation(status: .success, valueBytes: 4)
            case 6:
                let skip = word(0)
                guard skip <= 1 else { return Expectation(status: .invalidParameters) }
                return Expectation(status: .success, valueBytes: skip == 0 ? 8 : 4, answer: { v, _, _ in
                    expectWord(v, 0, 1 - skip, "DISCOVER_LIST_PROTOCOLS count")
                    if skip == 0 { expectWord(v, 1, 0x13, "DISCOVER_LIST_PROTOCOLS protocol") }
                })
            default:
                let agent = word(0)
                return Expectation(status: agent == 0 || agent == 1 || agent == 0xFFFF_FFFF ? .success : .notFound, valueBytes: 20)
            }
        case performance:
            guard let words = performanceWords[messageID] else { return Expectation(status: .notFound) }
            guard parameterBytes == 4 * words else { return Expectation(status: .protocolError) }
            switch messageID {
            case 0: return Expectation(status: .success, valueBytes: 4, answer: { v, _, _ in expectWord(v, 0, 0x30000, "perf PROTOCOL_VERSION") })
            case 1:
                return Expectation(status: .success, valueBytes: 16, answer: { v, _, _ in
                    invariant(Int(v[0]) | Int(v[1]) << 8 == domains.count, "perf PROTOCOL_ATTRIBUTES: \(v[0]) domains, not \(domains.count)")
                })
            case 2:
                // Advertised: what is served, never notifications or fastchannels.
                let advertised = word(0) <= 0xFF && performanceWords[UInt8(word(0))] != nil
                return Expectation(status: advertised ? .success : .notFound, valueBytes: 4)
            default: break
            }
            let d = Int(word(0))
            guard word(0) < UInt32(domains.count) else { return Expectation(status: .notFound) }
            let levels = domains[d].levelsKHz
            func index(_ kHz: UInt32) -> Int? { levels.firstIndex(of: kHz) }
            switch messageID {
            case 3:
                return Expectation(status: .success, valueBytes: 32, answer: { v, _, _ in
                    expectWord(v, 3, levels.last!, "DOMAIN_ATTRIBUTES sustained level")
                    expectWord(v, 0, 0xC000_0000 | (domains[d].name.count > 15 ? 1 << 26 : 0), "DOMAIN_ATTRIBUTES flags")
                })
            case 4:
                let first = word(1)
                guard first < UInt32(levels.count) else { return Expectation(status: .invalidParameters) }
                // As many 12-byte entries as fit after the two counts; none fitting is COMMS_ERROR.
                let start = Int(first), count = min((valueRoom - 4) / 12, levels.count - start)
                guard count > 0 else { return Expectation(status: .success, valueBytes: Int.max) }
                let power = domains[d].power
                return Expectation(status: .success, valueBytes: 4 + 12 * count, answer: { v, _, _ in
                    expectWord(v, 0, UInt32(count) | UInt32(levels.count - start - count) << 16, "DESCRIBE_LEVELS counts")
                    for entry in 0..<count {
                        expectWord(v, 1 + 3 * entry, levels[start + entry], "DESCRIBE_LEVELS level \(start + entry)")
                        expectWord(v, 2 + 3 * entry, power[start + entry], "DESCRIBE_LEVELS power \(start + entry)")
                    }
                })
            case 5:
                let maximum = word(1), minimum = word(2)
                guard maximum != 0 || minimum != 0 else { return Expectation(status: .invalidParameters) }
                var newMaximum: Int?, newMinimum: Int?
                if maximum != 0 {
                    guard let i = index(maximum) else { return Expectation(status: .outOfRange) }
                    newMaximum = i
                }
                if minimum != 0 {
                    guard let i = index(minimum) else { return Expectation(status: .outOfRange) }
                    newMinimum = i
                }
                if let newMaximum, let newMinimum, newMinimum > newMaximum { return Expectation(status: .invalidParameters) }
                return Expectation(status: .success, change: .limits(domain: d, maximum: newMaximum, minimum: newMinimum))
            case 6:
                return Expectation(status: .success, valueBytes: 8, answer: { v, m, _ in
                    expectWord(v, 0, levels[m.maximum[d]], "LIMITS_GET max of domain \(d)")
                    expectWord(v, 1, levels[m.minimum[d]], "LIMITS_GET min of domain \(d)")
                })
            case 7:
                guard let i = index(word(1)) else { return Expectation(status: .outOfRange) }
                return Expectation(status: .success, change: .level(domain: d, index: i))
            case 8:
                return Expectation(status: .success, valueBytes: 4, answer: { v, _, host in
                    expectWord(v, 0, host.currentPerformanceKHz(vcpu: domains[d].vcpus[0]), "LEVEL_GET of domain \(d)")
                })
            default:
                return Expectation(status: .success, valueBytes: 68, answer: { v, _, _ in
                    let name = Array(v[4..<68].prefix { $0 != 0 })
                    invariant(name == domains[d].name, "DOMAIN_NAME_GET of domain \(d): \(name), not \(domains[d].name)")
                })
            }
        default:
            return Expectation(status: .notSupported)
        }
    }

    static func expectWord(_ values: [UInt8], _ index: Int, _ expected: UInt32, _ what: @autoclosure () -> String) {
        let offset = 4 * index
        guard values.count >= offset + 4 else { return invariant(false, "\(what()): \(values.count) bytes of values") }
        let word = values[offset..<(offset + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        invariant(word == expected, "\(what()) is \(word), expected \(expected)")
    }

    /// An accepted LIMITS_SET or LEVEL_SET: the model's new state, and the
    /// request it must have made (docs/scmi.md "Mapping to the session").
    static func apply(_ change: Change, _ model: inout Model, _ domains: [SCMIPerformanceDomain], outcome: SCMIOutcome, session: Host) {
        let d: Int
        let fromLevelSet: Bool
        switch change {
        case .limits(let domain, let maximum, let minimum):
            d = domain
            fromLevelSet = false
            // 0 leaves a limit as it is; the max is held at the cap; min <= max.
            if let maximum { model.maximum[d] = min(maximum, domains[d].capIndex) }
            if let minimum { model.minimum[d] = minimum }
            model.minimum[d] = min(model.minimum[d], model.maximum[d])
        case .level(let domain, let index):
            d = domain
            fromLevelSet = true
            model.requested[d] = index
        }
        let applied = min(max(model.requested[d] ?? 0, model.minimum[d]), model.maximum[d])
        let moves = applied != (model.submitted[d] ?? 0)
        guard fromLevelSet || moves else {
            invariant(outcome.request == nil, "a LIMITS_SET that leaves domain \(d) at level \(applied) made a request \(String(describing: outcome.request))")
            return
        }
        model.submitted[d] = applied
        let level = domains[d].levelsKHz[applied]
        let wanted = GuestRequest(vcpu: domains[d].vcpus[0], performanceKHz: level, source: .scmi)
        invariant(outcome.request == wanted, "domain \(d): request \(String(describing: outcome.request)), expected \(wanted)")
        if let request = outcome.request {
            invariant(domains[d].vcpus.contains(request.vcpu), "a request for vCPU \(request.vcpu), not of domain \(d)")
            invariant((request.performanceKHz ?? 0) <= domains[d].capKHz, "a request of \(request.performanceKHz ?? 0) kHz above the cap \(domains[d].capKHz)")
            // The policy applies it to the domain; LEVEL_GET reads it back.
            for vcpu in domains[d].vcpus { session.current[vcpu] = request.performanceKHz }
        }
    }

    static func checkState(_ platform: SCMIPlatform, _ model: Model) {
        invariant(platform.minimumIndex == model.minimum && platform.maximumIndex == model.maximum,
            "limits \(platform.minimumIndex)...\(platform.maximumIndex), expected \(model.minimum)...\(model.maximum)")
        invariant(platform.requestedIndex == model.requested, "requested \(platform.requestedIndex), expected \(model.requested)")
        invariant(platform.submittedIndex == model.submitted, "submitted \(platform.submittedIndex), expected \(model.submitted)")
        for (d, domain) in platform.domains.enumerated() {
            invariant(platform.minimumIndex[d] <= platform.maximumIndex[d] && platform.maximumIndex[d] <= domain.capIndex,
                "domain \(d) limits \(platform.minimumIndex[d])...\(platform.maximumIndex[d]) with cap \(domain.capIndex)")
        }
        let counters = platform.counters
        invariant(counters.messages == model.messages && counters.statuses == model.statuses && counters.shortBuffers == model.shortBuffers,
            "counters \(counters), expected \(model.messages) messages, statuses \(model.statuses), \(model.shortBuffers) short")
    }

    /// DESCRIBE_LEVELS paged from level 0 as Linux does, with `room` bytes of
    /// response buffer: every level exactly once, in order, with a remainder
    /// that counts down to 0; or COMMS_ERROR at once when not one entry fits.
    static func describeAll(_ platform: inout SCMIPlatform, _ model: inout Model, _ session: Host, domain: UInt8, room: Int) {
        let d = Int(domain) % platform.domains.count
        let levels = platform.domains[d].levelsKHz
        let perEntry = 12
        let fit = (min(max(room - 8, 0), maximumReturn) - 4) / perEntry
        var seen: [UInt32] = []
        var first = 0
        while first < levels.count {
            var message: [UInt8] = []
            for word in [UInt32(0x13) << 10 | 4, UInt32(d), UInt32(first)] { withUnsafeBytes(of: word.littleEndian) { message += $0 } }
            let values = message.withUnsafeBytes { send(&platform, &model, session, $0, length: 12, room: room) }
            guard let values else {
                invariant(fit <= 0, "DESCRIBE_LEVELS from \(first) failed though \(fit) entries fit")
                return
            }
            let returned = Int(values[0]) | Int(values[1]) << 8, remaining = Int(values[2]) | Int(values[3]) << 8
            invariant(returned == min(fit, levels.count - first) && remaining == levels.count - first - returned,
                "DESCRIBE_LEVELS from \(first): \(returned) returned, \(remaining) remaining, of \(levels.count) with room for \(fit)")
            guard returned > 0, values.count == 4 + perEntry * returned else { return }
            for entry in 0..<returned {
                let at = 4 + perEntry * entry
                seen.append(values[at..<(at + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            }
            first += returned
        }
        invariant(seen == levels, "paging DESCRIBE_LEVELS of domain \(d) gave \(seen), the table is \(levels)")
    }

    static func describe(_ message: UnsafeRawBufferPointer, _ length: Int) -> String {
        let header = message.count >= 4 ? SCMIHeader(rawValue: message.loadUnaligned(as: UInt32.self)).description : "no header"
        return "\(header), \(message.count) bytes (\(length) long)"
    }

    // MARK: Seeds

    /// One message step: the default buffer, the message as copied.
    static func step(_ protocolID: UInt8, _ message: UInt8, _ parameters: [UInt32] = [], token: UInt32 = 0) -> [UInt8] {
        var bytes: [UInt8] = []
        let header = UInt32(message) | UInt32(protocolID) << 10 | (token & 0x3FF) << 18
        for word in [header] + parameters { withUnsafeBytes(of: word.littleEndian) { bytes += $0 } }
        return [0, 1, UInt8(bytes.count)] + bytes + [0]
    }

    /// The Linux scmi driver's probe (base, then performance discovery of
    /// every domain with DESCRIBE_LEVELS paged), then cpufreq's traffic:
    /// LEVEL_SET on each domain, LEVEL_GET, LIMITS_SET and LIMITS_GET, on
    /// every fixture VM.
    static func seeds() -> [FuzzSeed] {
        FuzzFixtures.models.indices.map { index in
            let (vm, host) = (FuzzFixtures.models[index], FuzzFixtures.hosts[index])
            let domains = SCMIPerformanceDomain.domains(of: vm, host: host)
            var token: UInt32 = 0
            func next(_ protocolID: UInt8, _ message: UInt8, _ parameters: [UInt32] = []) -> [UInt8] {
                token += 1
                return step(protocolID, message, parameters, token: token)
            }
            var bytes: [UInt8] = [UInt8(index), 0, 0]
            bytes += next(base, 0) + next(base, 1) + next(base, 2, [0x10]) + next(base, 3) + next(base, 4) + next(base, 5)
            bytes += next(base, 6, [0]) + next(base, 7, [0xFFFF_FFFF])
            bytes += next(performance, 0) + next(performance, 2, [0x10]) + next(performance, 1)
            for (d, domain) in domains.enumerated() {
                bytes += next(performance, 3, [UInt32(d)])
                if domain.name.count > 15 { bytes += next(performance, 2, [0xC]) + next(performance, 0xC, [UInt32(d)]) }
                var first = 0
                while first < domain.levelsKHz.count {
                    bytes += next(performance, 4, [UInt32(d), UInt32(first)])
                    first += 10
                }
                bytes += next(performance, 2, [0x9]) + next(performance, 2, [0xA]) + next(performance, 2, [0xB])
            }
            for (d, domain) in domains.enumerated() {
                let levels = domain.levelsKHz
                bytes += next(performance, 7, [UInt32(d), levels[levels.count / 2]]) + next(performance, 8, [UInt32(d)])
                bytes += next(performance, 7, [UInt32(d), levels[levels.count - 1]]) + next(performance, 8, [UInt32(d)])
                bytes += next(performance, 5, [UInt32(d), levels[levels.count - 1], levels[0]]) + next(performance, 6, [UInt32(d)])
            }
            return FuzzSeed(name: "linux-probe-\(vm.name)-\(index)", bytes: bytes)
        }
    }
}
