import Testing
@testable import VCPUFreqCore

/// The guest tree of the SCMI device (`topology dt --scmi`), compiled by dtc
/// and read back, and the VMM command lines (`topology qemu-args`,
/// `crosvm-args --scmi`) as argv words.
@Suite struct SCMIRenderingTests {
    @Test(arguments: SampleTopologies.all(tableMode: .table))
    func scmiTreeDescribesEachCPUsDomain(topology: Topology) throws {
        let model = try topology.model()
        let source = try DeviceTree.render(topology, device: .scmi)
        // With nothing behind its window the guest's virtual-cpufreq driver takes an external abort.
        #expect(!source.contains("qemu,virtual-cpufreq") && !source.contains("cpufreq@"))
        let tree = try DeviceTreeTests.compiled(source)
        let scmi = try #require(tree.root.child("firmware")?.child("scmi"))
        #expect(scmi.strings("compatible") == ["arm,scmi-virtio"])
        #expect(scmi.cells("#address-cells") == [1] && scmi.cells("#size-cells") == [0])
        #expect(scmi.properties["mboxes"] == nil && scmi.properties["shmem"] == nil, "virtio has no dedicated channel")
        #expect(scmi.children.map(\.name) == ["protocol@13"])
        let performance = try #require(scmi.child("protocol@13"))
        #expect(performance.cells("reg") == [0x13] && performance.cells("#clock-cells") == [1])
        let provider = try #require(performance.cells("phandle")?.first)

        // Each CPU names its SCMI domain: the index of its domain in the model's order.
        let cpus = try #require(tree.root.child("cpus"))
        var domainOf: [Int: Int] = [:]
        for (domain, members) in model.domains.enumerated() { for vcpu in members { domainOf[vcpu] = domain } }
        for vcpu in 0..<model.vcpuCount {
            let node = try #require(cpus.child("cpu@\(String(vcpu, radix: 16))"))
            #expect(node.cells("clocks") == [provider, UInt32(domainOf[vcpu]!)], "cpu@\(vcpu)")
        }
        // Everything else is the upstream tree's (same cpus, same cpu-map).
        let upstream = try DeviceTreeTests.compiled(try DeviceTree.render(topology))
        #expect(cpus.child("cpu-map")?.children.map(\.name) == upstream.root.child("cpus")?.child("cpu-map")?.children.map(\.name))
        #expect(cpus.children.filter { $0.name.hasPrefix("cpu@") }.map { $0.cells("capacity-dmips-mhz") }
            == upstream.root.child("cpus")!.children.filter { $0.name.hasPrefix("cpu@") }.map { $0.cells("capacity-dmips-mhz") })
    }

    /// Merged into QEMU's tree the fragment's cpu-map must replace QEMU's
    /// (whose one cluster holds every CPU), not mix with it.
    @Test func scmiTreeReplacesAVMMsCPUMap() throws {
        let fragment = try DeviceTree.render(SampleTopologies.laptop(), device: .scmi)
        let base = """
            /dts-v1/;
            / {
            \tcpus {
            \t\t#address-cells = <1>;
            \t\t#size-cells = <0>;
            \t\tcpu-map { socket0 { cluster0 { core0 { cpu = <&c0>; }; }; }; };
            \t\tc0: cpu@0 { device_type = "cpu"; reg = <0>; compatible = "arm,cortex-a57"; };
            \t};
            };

            """
        let merged = base + fragment.replacingOccurrences(of: "/dts-v1/;\n", with: "")
        let tree = try DeviceTreeTests.compiled(merged)
        let map = try #require(tree.root.child("cpus")?.child("cpu-map"))
        #expect(map.children.map(\.name) == ["cluster0", "cluster1"], "QEMU's socket0 is gone")
        #expect(tree.root.child("cpus")?.child("cpu@0")?.strings("compatible") == ["arm,armv8"])
    }

    // MARK: QEMU

    @Test func qemuArgumentsOverMMIO() throws {
        let rendering = try QEMUArguments.render(
            SampleTopologies.phone(), options: .init(device: .scmi(socket: "/run/vcpufreq/android.sock", transport: .mmio), dtbPath: "/tmp/g.dtb"))
        #expect(rendering.arguments == [
            "-machine", "virt,gic-version=3,memory-backend=vcpufreq-mem",
            "-smp", "8", "-m", "512M",
            "-object", "memory-backend-memfd,id=vcpufreq-mem,size=512M,share=on",
            "-name", "guest=android,debug-threads=on",
            "-chardev", "socket,id=vcpufreq-scmi,path=/run/vcpufreq/android.sock",
            "-global", "virtio-mmio.force-legacy=false",
            "-device", "vhost-user-scmi,chardev=vcpufreq-scmi",
            "-dtb", "/tmp/g.dtb",
        ])
        #expect(rendering.machineArguments == Array(rendering.arguments[0..<8]), "what dumpdtb needs: no device, no -dtb")
        #expect(rendering.notes.contains { $0.contains("pins them") })
        #expect(!rendering.notes.contains { $0.contains("-dtb") })
    }

    @Test func qemuArgumentsOverPCIWithAcceleratorAndNoTree() throws {
        var topology = SampleTopologies.laptop()
        topology.vms[0].pin = false
        let rendering = try QEMUArguments.render(
            topology, options: .init(device: .scmi(socket: "/s", transport: .pci), memoryMiB: 1024, accelerator: "kvm", cpu: "host"))
        #expect(rendering.arguments.prefix(6) == ["-machine", "virt,gic-version=3,memory-backend=vcpufreq-mem", "-accel", "kvm", "-cpu", "host"])
        #expect(rendering.arguments.contains("memory-backend-memfd,id=vcpufreq-mem,size=1024M,share=on"))
        #expect(Array(rendering.arguments.suffix(2)) == ["-device", "vhost-user-scmi-pci,chardev=vcpufreq-scmi"])
        #expect(!rendering.arguments.contains("virtio-mmio.force-legacy=false"))
        #expect(rendering.notes.contains { $0.contains("-machine dumpdtb=FILE") }, "no -dtb: the note says how to make one")
        #expect(!rendering.notes.contains { $0.contains("pins them") })
    }

    @Test func manyVCPUsGetANoteAboutMPIDRs() throws {
        var topology = SampleTopologies.server()
        topology.vms[0].vcpuCount = 17
        topology.vms[0].clusters = Array(repeating: "all", count: 17)
        topology.host.clusters[0].cpus = CPUList(0...16)
        let rendering = try QEMUArguments.render(topology, options: .init(device: .scmi(socket: "/s", transport: .mmio)))
        #expect(rendering.notes.contains { $0.contains("17 vCPUs") })
    }

    /// The socket path is a value of the chardev's option list: a comma in
    /// it is doubled, or QEMU reads the rest of the path as options (seen
    /// while fixing optionValue's escaping; the topology fuzz target's QEMU
    /// reader checks every rendered option list since).
    @Test func aSocketPathWithACommaStaysOnePath() throws {
        let rendering = try QEMUArguments.render(
            SampleTopologies.phone(), options: .init(device: .scmi(socket: "/run/vm,a=b.sock", transport: .pci)))
        let chardev = try #require(rendering.arguments.firstIndex(of: "-chardev"))
        #expect(rendering.arguments[chardev + 1] == "socket,id=vcpufreq-scmi,path=/run/vm,,a=b.sock")
    }

    /// crosvm's key=value parser (serde_keyvalue) ends a bare string at ","
    /// and refuses quotes and brackets in one; a double-quoted string
    /// escapes `"` and `\` with a backslash.
    @Test(arguments: [
        ("/run/vm.sock", "/run/vm.sock"), ("/run/vm,a=b.sock", #""/run/vm,a=b.sock""#), ("it's", #""it's""#),
        (#"a"b\c"#, #""a\"b\\c""#), ("[x]", #""[x]""#), ("", #""""#), ("/run/ü =x", "/run/ü =x"),
    ])
    func crosvmKeyValueStrings(value: String, rendered: String) {
        #expect(CrosvmArguments.keyValue(value) == rendered)
    }

    @Test func commandLineQuotesAndKeepsOptionsWithTheirValues() {
        let text = QEMUArguments.commandLine(["-name", "vm one,debug-threads=on", "-nographic", "-m", "512M"])
        #expect(text == "-name 'vm one,debug-threads=on' \\\n-nographic \\\n-m 512M")
    }

    // MARK: crosvm

    @Test func crosvmSCMIUsesVhostUserInsteadOfVirtCPUFreq() throws {
        let rendering = try CrosvmArguments.render(SampleTopologies.phone(), scmiSocket: "/run/vcpufreq/android-scmi.sock")
        let plain = try CrosvmArguments.render(SampleTopologies.phone())
        #expect(rendering.arguments == Array(plain.arguments.prefix(3)) + ["--vhost-user type=scmi,socket=/run/vcpufreq/android-scmi.sock"])
        #expect(!rendering.arguments.contains { $0.contains("virt-cpufreq") || $0.contains("frequencies") })
        #expect(rendering.notes.contains { $0.contains("--vhost-user-scmi /run/vcpufreq/android-scmi.sock=android") })
        #expect(rendering.notes.contains { $0.contains("topology dt --scmi") })
    }
}
