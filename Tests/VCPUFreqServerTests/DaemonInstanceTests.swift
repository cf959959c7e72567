import Testing

@testable import VCPUFreqServer

/// The names a daemon derives from its state directory, and the record of
/// its BPF pins: pure, checked by table.
@Suite struct DaemonInstanceTests {
    @Test(arguments: [
        ("/run/vcpufreq", "/", nil as String?),
        ("/run/vcpufreq/", "/", nil),
        ("//run/./vcpufreq", "/", nil),
        ("/run/x/../vcpufreq", "/", nil),
        ("vcpufreq", "/run", nil),
        ("/var/lib/vcpufreq-b", "/", "vcpufreq-b-"),
        ("state", "/tmp/t", "state-"),
        ("/", "/", "root-"),
        ("/srv/a b$c", "/", "a_b_c-"),
    ])
    func names(_ path: String, _ workingDirectory: String, _ prefix: String?) {
        let instance = DaemonInstance(stateDirectory: path, workingDirectory: workingDirectory)
        if let prefix {
            let name = try! #require(instance.name)
            #expect(name.hasPrefix(prefix) && name.count == prefix.count + 16, "\(name)")
            #expect(instance.cgroupParent == "vcpufreq-" + name)
            #expect(instance.utilHintPinPath == "/sys/fs/bpf/vcpufreq-\(name)/util_hint")
            #expect(instance.pinDirectory == "/sys/fs/bpf/vcpufreq-\(name)")
        } else {
            // The default instance keeps the documented names.
            #expect(instance.name == nil)
            #expect(instance.stateDirectory == "/run/vcpufreq")
            #expect(instance.cgroupParent == "vcpufreq")
            #expect(instance.utilHintPinPath == "/sys/fs/bpf/vcpufreq/util_hint")
        }
        #expect(instance.lockPath == instance.stateDirectory + "/daemon.lock")
    }

    @Test func spellingsOfOnePathShareANameAndOthersDoNot() {
        let a = DaemonInstance(stateDirectory: "/tmp/x/state")
        #expect(DaemonInstance(stateDirectory: "state", workingDirectory: "/tmp/x") == a)
        #expect(DaemonInstance(stateDirectory: "/tmp/x//state/").name == a.name)
        #expect(DaemonInstance(stateDirectory: "/tmp/y/state").name != a.name)
        #expect(DaemonInstance.normalize("/a/../../b/./c//") == "/b/c")
        // FNV-1a 64 reference values.
        #expect(DaemonInstance.fnv1a64("") == 0xcbf2_9ce4_8422_2325)
        #expect(DaemonInstance.fnv1a64("a") == 0xaf63_dc4c_8601_ec8c)
    }

    @Test func pinRecord() {
        let record = BPFPinRecord(bootID: "b-1", pins: [(7, "/sys/fs/bpf/vcpufreq-x/util_hint"), (9, "/sys/fs/bpf/vcpufreq-x/other")])
        #expect(record.text == "boot b-1\n7 /sys/fs/bpf/vcpufreq-x/util_hint\n9 /sys/fs/bpf/vcpufreq-x/other\n")
        #expect(BPFPinRecord.parse(record.text) == record)
        #expect(record.names(id: 7, path: "/sys/fs/bpf/vcpufreq-x/util_hint", bootID: "b-1"))
        #expect(!record.names(id: 7, path: "/sys/fs/bpf/vcpufreq-x/util_hint", bootID: "b-2"), "ids restart at boot")
        #expect(!record.names(id: 8, path: "/sys/fs/bpf/vcpufreq-x/util_hint", bootID: "b-1"))
        for bad in ["", "7 /x\n", "boot b\nseven /x\n", "boot b\n7 relative\n", "boot b\n7\n"] {
            #expect(BPFPinRecord.parse(bad) == nil, "\(bad)")
        }
        #expect(BPFPinRecord.parse("boot b\n") == BPFPinRecord(bootID: "b", pins: []))
    }

    @Test func refusalMessagesNameThePathAndThePid() {
        let held = InstanceLocks.refusal(
            .held(path: "/run/vcpufreq/daemon.lock", holder: .init(pid: 42, state: .serving)),
            what: "state directory /run/vcpufreq", flag: "--state-dir")
        #expect(held.description == "cannot use state directory /run/vcpufreq: another vcpufreq daemon (pid 42, serving) is using it (lock /run/vcpufreq/daemon.lock); stop that daemon first, or give this one its own --state-dir")
        let slow = InstanceLocks.refusal(
            .stillStopping(path: "/s.lock", holder: .init(pid: 42, state: .stopping), waitedMilliseconds: 30_012),
            what: "socket /s", flag: "--socket")
        #expect(slow.description == "cannot use socket /s: another vcpufreq daemon (pid 42, stopping) is still stopping after 30 s (lock /s.lock)")
    }
}
