// The topology file: TOML text (TOMLKit), the decoder, the check, and what
// the daemon and the CLI make of a file that passes.
//
// Text inputs: a file either decodes to a topology, with no error among its
// diagnostics, or is refused with at least one error; every diagnostic has a
// message, and a line whenever the file has the table it is about. A file
// that passes is usable: every VM profile resolves to a model the device can
// serve (tables of 1...64 ascending entries, domains that partition the
// vCPUs, a cap within 0...1024, a device space that fits in 64 bits), the
// device tree and crosvm arguments render, and the file the encoder writes
// for it decodes to the same topology.
// Built topologies (first byte below 16): check() either passes, and then
// the same holds, or reports errors, and then the file written for it is
// refused too.
import TOMLKit
@testable import VCPUFreqConfig
@testable import VCPUFreqCore

enum TopologyTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        if let first = bytes.first, first < 16 {
            var input = FuzzInput(bytes)
            _ = input.byte()
            checkBuilt(topology(&input))
        } else {
            checkText(String(decoding: bytes, as: UTF8.self))
        }
    }

    static func checkText(_ text: String) {
        let (topology, diagnostics) = TopologyFile.decode(text)
        for diagnostic in diagnostics {
            invariant(!diagnostic.message.isEmpty, "diagnostic without a message: \(diagnostic)")
        }
        guard let topology else {
            invariant(diagnostics.hasErrors, "refused without an error: \(diagnostics)")
            checkLines(diagnostics, text: text)
            return
        }
        invariant(!diagnostics.hasErrors, "decoded although \(diagnostics.filter { $0.severity == .error })")
        checkLines(diagnostics, text: text)
        checkUsable(topology)
    }

    /// A diagnostic lacks a line only when TOMLKit (not our locator) finds
    /// no table or key at the root its key path starts with.
    static func checkLines(_ diagnostics: [Diagnostic], text: String) {
        guard diagnostics.contains(where: { $0.line == nil }), let root = try? TOMLTable(string: text) else { return }
        for diagnostic in diagnostics where diagnostic.line == nil && !diagnostic.keyPath.isEmpty {
            let key = String(diagnostic.keyPath.prefix { $0 != "." && $0 != "[" })
            invariant(root[key] == nil, "\(diagnostic) has no line, though the file has `\(key)`")
        }
    }

    static func checkBuilt(_ topology: Topology) {
        let problems = topology.check()
        for problem in problems {
            invariant(!problem.message.isEmpty, "problem without a message: \(problem)")
        }
        let text = TopologyFile.encode(topology)
        if problems.hasErrors {
            let (decoded, diagnostics) = TopologyFile.decode(text)
            // A name with a newline or a quote can change what the file says;
            // what is refused in Swift must not pass as a file.
            invariant(decoded == nil || decoded != topology,
                      "check() found \(problems.filter { $0.severity == .error }) but its file passes: \(diagnostics)")
        } else {
            checkUsable(topology)
        }
    }

    /// What passing the check promises.
    static func checkUsable(_ topology: Topology) {
        for profile in topology.vms {
            let model: VMModel
            do {
                model = try topology.model(forVM: profile.name)
            } catch {
                invariant(false, "profile \(profile.name) passed the check but does not resolve: \(error)")
                continue
            }
            check(model)
            _ = DeviceTree.render(model, host: topology.host)
            _ = CrosvmArguments.render(model)
            checkQEMUArguments(model)
        }
        let text = TopologyFile.encode(topology)
        let (again, diagnostics) = TopologyFile.decode(text)
        invariant(again == topology, "the encoded file decodes differently (\(diagnostics)):\n\(text)")
    }

    /// The QEMU command line of a VM as QEMU and the shell read it (bytes):
    /// the names and the socket path come back whole from the option lists,
    /// and the printed command line gives back every argument.
    static func checkQEMUArguments(_ model: VMModel) {
        let socket = "/run/vm,\u{301}'\u{301}1.sock"
        for device in [QEMUArguments.Device.virtualCPUFreq(socket: socket, base: nil, mirror: true), .scmi(socket: socket, transport: .pci)] {
            let rendering = QEMUArguments.render(model, options: .init(device: device))
            let arguments = rendering.arguments
            func options(after flag: String) -> [String: [UInt8]] {
                guard let index = arguments.firstIndex(of: flag), index + 1 < arguments.count else { return [:] }
                return optionList(arguments[index + 1])
            }
            invariant(options(after: "-name")["guest"] == Array(model.name.utf8), "-name of \(model.name.debugDescription): \(arguments)")
            if case .virtualCPUFreq = device {
                let list = options(after: "-device")
                invariant(list["profile"] == Array(model.name.utf8) && list["vm-name"] == Array(model.name.utf8)
                          && list["socket"] == Array(socket.utf8), "-device of \(model.name.debugDescription): \(arguments)")
            } else {
                invariant(options(after: "-chardev")["path"] == Array(socket.utf8), "-chardev: \(arguments)")
            }
            let printed = QEMUArguments.commandLine(arguments)
            invariant(shellWords(printed) == arguments.map { Array($0.utf8) }, "the shell reads back other words from\n\(printed)")
        }
    }

    /// A QEMU option list (`drv,key=value,...`) as QEMU's parser reads its
    /// bytes: ",," is a comma of the value, a lone "," ends it; the first
    /// element, without "=", under "name" (a `-device` driver).
    static func optionList(_ text: String) -> [String: [UInt8]] {
        var elements: [[UInt8]] = [[]]
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            if byte == UInt8(ascii: ","), bytes.first != UInt8(ascii: ",") {
                elements.append([])
            } else {
                if byte == UInt8(ascii: ",") { bytes.removeFirst() }
                elements[elements.count - 1].append(byte)
            }
        }
        var list: [String: [UInt8]] = [:]
        for (position, element) in elements.enumerated() {
            if let equals = element.firstIndex(of: UInt8(ascii: "=")) {
                list[String(decoding: element[..<equals], as: UTF8.self)] = Array(element[(equals + 1)...])
            } else if position == 0 {
                list["name"] = element
            }
        }
        return list
    }

    /// The words a POSIX shell makes of a command line, byte by byte, for the
    /// forms a printed command line may use: bare words of ASCII letters,
    /// digits and `=,:-_./+`, single quotes, `\'` between them, and a
    /// backslash-newline between words. nil on anything else (a bare byte
    /// the shell would treat as syntax).
    static func shellWords(_ text: String) -> [[UInt8]]? {
        let bare = Set("=,:-_./+".utf8)
        var words: [[UInt8]] = [], word: [UInt8]?
        var bytes = Array(text.utf8)[...]
        while let byte = bytes.popFirst() {
            switch byte {
            case UInt8(ascii: " "):
                if let done = word { words.append(done) }
                word = nil
            case UInt8(ascii: "\\"):
                guard let next = bytes.popFirst() else { return nil }
                if next == UInt8(ascii: "\n") { guard word == nil else { return nil }; continue }
                word = (word ?? []) + [next]
            case UInt8(ascii: "'"):
                guard let close = bytes.firstIndex(of: UInt8(ascii: "'")) else { return nil }
                word = (word ?? []) + bytes[..<close]
                bytes = bytes[(close + 1)...]
            default:
                guard byte < 0x80, (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || bare.contains(byte) else { return nil }
                word = (word ?? []) + [byte]
            }
        }
        if let done = word { words.append(done) }
        return words
    }

    static func check(_ model: VMModel) {
        invariant(model.vcpuCount >= 1 && model.vcpuCount <= SharedPageABI.maximumVCPUs, "\(model.vcpuCount) vCPUs")
        invariant((0...1024).contains(model.utilCap), "util_cap \(model.utilCap)")
        for vcpu in model.vcpus {
            let table = vcpu.frequenciesKHz
            invariant((1...UpstreamABI.maximumTableEntries).contains(table.count), "vCPU \(vcpu.index): \(table.count) entries")
            invariant(zip(table, table.dropFirst()).allSatisfy { $0 < $1 } && table.first! > 0, "vCPU \(vcpu.index): table \(table)")
            invariant((0...1024).contains(vcpu.capacity) && (0...1024).contains(vcpu.hostCapacity), "vCPU \(vcpu.index) capacity")
            invariant(!model.pin || !vcpu.hostCPUs.isEmpty, "vCPU \(vcpu.index) pinned to no CPU")
        }
        let members = model.domains.flatMap { $0 }
        invariant(members.sorted() == Array(0..<model.vcpuCount), "domains \(model.domains) do not partition the vCPUs")
        for domain in model.domains {
            let numbers = Set(domain.map { model.vcpus[$0].performanceDomain })
            invariant(numbers.count == 1, "domain \(domain) has perf_domain numbers \(numbers)")
        }
        let (_, overflow) = model.addressMap.base.addingReportingOverflow(DeviceAddressMap.totalSpan)
        invariant(!overflow, "base address 0x\(String(model.addressMap.base, radix: 16)) leaves no room for the device")
    }

    // MARK: Built topologies

    static let names = ["little", "mid", "big", "", "a.b", "x\"y", "line\nbreak", "ü", "q'\u{301}", "c,\u{301}d", "\u{D4E};x"]

    static func topology(_ input: inout FuzzInput) -> Topology {
        var clusters: [HostCluster] = []
        for _ in 0..<(1 + input.index(below: 4)) {
            let cpus = (0..<input.index(below: 6)).map { _ in input.bool() ? input.index(below: 16) : Int(input.integer(Int16.self)) }
            let count = input.bool() ? 1 + input.index(below: 17) : input.index(below: 70)
            var frequency = Int(input.value(near: [0, 300_000, 1_000_000]) % 4_000_000_000)
            var table: [Int] = []
            for _ in 0..<count {
                table.append(frequency)
                frequency += input.bool() ? 100_000 : Int(input.integer(Int32.self))
            }
            clusters.append(HostCluster(
                name: input.element(of: names), cpus: CPUList(cpus),
                capacity: Int(Int64(bitPattern: input.value(near: [0, 160, 498, 1024, 1025, UInt64.max]))),
                frequenciesKHz: table))
        }
        let host = HostTopology(
            name: input.text(maximum: 12), governor: input.bool() ? input.element(of: HostGovernor.allCases) : nil,
            possibleCPUs: input.bool() ? CPUList(0..<input.index(below: 20)) : nil, clusters: clusters)
        var vms: [VMProfile] = []
        for _ in 0..<input.index(below: 4) {
            let count = input.bool() ? 1 + input.index(below: 8) : Int(input.value(near: [0, 1024, 1025]) % 2048)
            let names = clusters.map(\.name) + ["nope"]
            let assigned = (0..<(input.bool() ? count : input.index(below: 10))).map { _ in input.element(of: names) }
            var profile = VMProfile(name: input.element(of: Self.names), vcpuCount: count, clusters: assigned)
            if input.bool() {
                profile.pinCPUs = assigned.map { _ in input.bool() ? nil : CPUList((0..<input.index(below: 4)).map { _ in input.index(below: 20) }) }
            }
            if input.bool() { profile.domains = assigned.map { _ in input.bool() ? input.index(below: 4) : Int(input.integer(Int16.self)) } }
            profile.pin = input.bool()
            profile.utilCap = Int(Int64(bitPattern: input.value(near: [0, 512, 1024, 1025])))
            profile.headroom = input.element(of: HeadroomCompensation.allCases)
            profile.tableMode = input.element(of: TableMode.allCases)
            profile.baseAddress = input.value(near: [DeviceAddressMap.defaultBase, 0, UInt64.max - DeviceAddressMap.totalSpan])
            if input.bool() {
                profile.policy = PolicySettings(
                    hysteresis: Int(input.integer(Int16.self)), minimumIntervalMicroseconds: Int(input.integer(Int32.self)),
                    boostHoldMilliseconds: Int(input.integer(Int32.self)), boostUtilization: Int(input.integer(Int16.self)),
                    idleDecayMilliseconds: Int(input.integer(Int32.self)), latencyHint: input.element(of: LatencyHintKind.allCases),
                    latencySliceMicroseconds: Int(input.integer(Int32.self)), latencyNice: Int(input.integer(Int8.self)),
                    kickMode: input.element(of: KickMode.allCases), pollIntervalMicroseconds: Int(input.integer(Int32.self)))
            }
            vms.append(profile)
        }
        return Topology(host: host, vms: vms)
    }

    // MARK: Seeds

    /// Every topology fixture (the broken one included) and the files the
    /// encoder writes for the valid ones.
    static func seeds() -> [FuzzSeed] {
        var seeds = (FuzzFixtures.topologyNames + ["broken"]).map { name in
            FuzzSeed(name: "\(name).toml", bytes: Array(FuzzFixtures.topologyText(name).utf8))
        }
        for (name, topology) in zip(FuzzFixtures.topologyNames, FuzzFixtures.topologies) {
            seeds.append(FuzzSeed(name: "\(name)-encoded.toml", bytes: Array(TopologyFile.encode(topology).utf8)))
        }
        return seeds
    }
}
