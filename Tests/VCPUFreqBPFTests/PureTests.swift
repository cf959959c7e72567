import Testing
import VCPUFreqCore

@testable import VCPUFreqBPF

@Suite struct Base64Tests {
    @Test(
        "RFC 4648 test vectors",
        arguments: [
            ("", ""), ("Zg==", "f"), ("Zm8=", "fo"), ("Zm9v", "foo"), ("Zm9vYg==", "foob"),
            ("Zm9vYmE=", "fooba"), ("Zm9vYmFy", "foobar"), ("+/+/", "\u{fb}\u{ff}\u{bf}"),
        ])
    func vectors(encoded: String, decoded: String) {
        let expected: [UInt8] = decoded.unicodeScalars.map { UInt8($0.value) }
        #expect(Base64.decode(encoded) == expected)
    }

    @Test("invalid input is rejected", arguments: ["Zg=", "Z===", "Zm9v!", "Zg==Zg==", "=Zg=", "Zm 9v", "Zg=a", "-_-_"])
    func invalid(text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test("the embedded object is a 64-bit little-endian BPF ELF relocatable object")
    func embeddedObject() {
        let object = BundledObject.vcpufreq
        #expect(object.count > 1000)
        #expect(Array(object.prefix(4)) == [0x7f, 0x45, 0x4c, 0x46])  // \x7fELF
        #expect(object.count > 20 && object[4] == 2 && object[5] == 1)  // ELFCLASS64, ELFDATA2LSB
        #expect(object.count > 20 && object[16] == 1 && object[17] == 0)  // e_type ET_REL
        #expect(object.count > 20 && object[18] == 247 && object[19] == 0)  // e_machine EM_BPF
    }
}

@Suite struct UtilHintTests {
    @Test(
        "utilizations are clamped to 0...1024 and min to max",
        arguments: [
            (0, 1024, 0, 1024), (300, 800, 300, 800), (900, 800, 800, 800), (2000, 3000, 1024, 1024),
            (1024, 1024, 1024, 1024), (500, 0, 0, 0),
        ] as [(UInt16, UInt16, UInt16, UInt16)])
    func clamps(min: UInt16, max: UInt16, expectedMin: UInt16, expectedMax: UInt16) {
        let hint = UtilHint(utilMin: min, utilMax: max)
        #expect(hint.utilMin == expectedMin)
        #expect(hint.utilMax == expectedMax)
    }

    @Test(
        "a policy hint becomes a map entry",
        arguments: [
            (HostHint(utilMin: 200, utilMax: 700), false, UtilHint.Flags(), UInt32(0)),
            (HostHint(utilMin: 200, latency: .slice(microseconds: 300)), false, [.latencySensitive], 300),
            (HostHint(utilMin: 200, latency: .nice(-5)), true, [.latencySensitive, .boost], 0),
            // A positive nice is still the operator's answer to a latency-sensitive guest.
            (HostHint(utilMin: 200, latency: .nice(5)), false, [.latencySensitive], 0),
        ] as [(HostHint, Bool, UtilHint.Flags, UInt32)])
    func fromHostHint(host: HostHint, boost: Bool, flags: UtilHint.Flags, slice: UInt32) {
        let hint = UtilHint(host, boost: boost)
        #expect(hint.utilMin == host.utilMin)
        #expect(hint.utilMax == host.utilMax)
        #expect(hint.flags == flags)
        #expect(hint.sliceMicroseconds == slice)
    }

    @Test("flag values are those of vcpufreq_bpf.h")
    func flagValues() {
        #expect(UtilHint.Flags.latencySensitive.rawValue == UInt32(LibBPF.headerConstants["VCPUFREQ_HINT_LATENCY_SENSITIVE"] ?? -1))
        #expect(UtilHint.Flags.boost.rawValue == UInt32(LibBPF.headerConstants["VCPUFREQ_HINT_BOOST"] ?? -1))
    }
}

@Suite struct ParsingTests {
    @Test(
        "capabilities from /proc/self/status",
        arguments: [
            ("CapEff:\t000001ffffffffff\n", true),  // root
            ("CapEff:\t0000000000000000\n", false),  // uid 65534
            ("CapEff:\t000000c000000000\n", true),  // CAP_BPF + CAP_PERFMON
            ("CapEff:\t0000008000000000\n", false),  // CAP_BPF alone
            ("CapEff:\t0000000000200000\n", true),  // CAP_SYS_ADMIN
            ("Name:\tx\n", false),  // no CapEff line
        ])
    func capabilities(status: String, canLoad: Bool) {
        #expect(Privileges.parse(status: "Name:\tprobe\n" + status, uid: 0).canLoadBPF == canLoad)
    }

    @Test("the visible mount at a path is the last one listed")
    func mounts() {
        let mounts = """
            sysfs /sys sysfs rw 0 0
            sysfs /sys/fs/bpf sysfs rw 0 0
            bpf /sys/fs/bpf bpf rw,relatime,mode=700 0 0
            nodev /sys/kernel/tracing tracefs rw 0 0
            """
        #expect(FileSystems.mountedType(at: "/sys/fs/bpf", mounts: mounts) == "bpf")
        #expect(FileSystems.mountedType(at: "/sys/kernel/tracing", mounts: mounts) == "tracefs")
        #expect(FileSystems.mountedType(at: "/sys/kernel/debug", mounts: mounts) == nil)
    }

    @Test(
        "the program or map libbpf names first is the culprit",
        arguments: [
            (["libbpf: prog 'on_sched_switch': BPF program load failed: Invalid argument"], "program", "on_sched_switch"),
            (["libbpf: map 'threads': failed to create: Operation not permitted(-1)"], "map", "threads"),
            (["libbpf: failed to load object 'vcpufreq'"], nil, nil),
        ] as [([String], String?, String?)])
    func culprit(messages: [String], kind: String?, name: String?) {
        let part = LibBPF.failingPart(in: messages)
        #expect(part?.kind == kind)
        #expect(part?.name == name)
    }

    @Test("a verifier log is cut to its last lines")
    func verifierTail() {
        let log = (1...100).map { "line \($0)" }.joined(separator: "\n")
        let tail = LibBPF.verifierLogTail(log, maxLines: 3)
        #expect(tail == "line 98\nline 99\nline 100")
        #expect(LibBPF.verifierLogTail("") == nil)
    }
}

@Suite struct MessageTests {
    /// Each error's message is a contract: the daemon logs it and `vcpufreq stats` prints it.
    @Test(
        "error messages",
        arguments: [
            (BPFError.permissionDenied(operation: "map 'threads'", reason: "Operation not permitted (errno 1)"),
             "loading BPF programs needs root, or CAP_BPF and CAP_PERFMON: map 'threads': Operation not permitted (errno 1)"),
            (BPFError.invalidObject(object: "vcpufreq", reason: "Invalid argument (errno 22)"),
             "BPF object vcpufreq is not a valid BPF ELF object: Invalid argument (errno 22)"),
            (BPFError.attachFailed(program: "on_kvm_exit", target: "tracepoint/kvm/kvm_exit", reason: "No such file or directory (errno 2)"),
             "BPF program 'on_kvm_exit' could not be attached to tracepoint/kvm/kvm_exit: No such file or directory (errno 2)"),
            (BPFError.loadFailed(object: "vcpufreq", program: "bad", reason: "Permission denied", verifierLog: "R0 invalid mem access"),
             "BPF object vcpufreq: the kernel refused 'bad': Permission denied\nverifier log (tail):\nR0 invalid mem access"),
            (BPFError.mountFailed(fileSystem: "tracefs", path: "/sys/kernel/tracing", reason: "Operation not permitted (errno 1)"),
             "tracefs is not mounted at /sys/kernel/tracing and mounting it failed: Operation not permitted (errno 1)"),
        ] as [(BPFError, String)])
    func messages(error: BPFError, message: String) {
        #expect(error.description == message)
    }

    @Test("the status lists what is attached and what is missing, and why")
    func statusDescription() {
        var status = MonitorStatus()
        status.state = .running
        status.attached = [.init(program: "on_sched_switch", target: "tp_btf/sched_switch")]
        status.missing = [.init(program: "on_kvm_exit", target: "tracepoint/kvm/kvm_exit", reason: "no tracepoint")]
        status.utilHintPinPath = "/sys/fs/bpf/vcpufreq/util_hint"
        #expect(
            status.description == """
                BPF monitor: running
                  attached  tp_btf/sched_switch (on_sched_switch)
                  missing   tracepoint/kvm/kvm_exit (on_kvm_exit): no tracepoint
                  util-hint map pinned at /sys/fs/bpf/vcpufreq/util_hint
                """)
        #expect(status.isAttached("on_sched_switch") && !status.isAttached("on_kvm_exit"))
        #expect(status.missingReason("on_kvm_exit") == "no tracepoint")
    }
}
