import Testing
@testable import VCPUFreqCore

/// `topology qemu-args --device virtual-cpufreq`: the patched QEMU's
/// `vcpufreq-cpufreq` device (integrations/qemu/) as argv words, its base
/// where the guest tree (`topology dt --base`) puts the windows.
/// scripts/test-qemu-guest boots a guest with exactly this rendering.
@Suite struct VirtualCPUFreqQEMUArgumentsTests {
    @Test func phoneUnderTCGSitsInThePlatformBusWindow() throws {
        let rendering = try QEMUArguments.render(
            SampleTopologies.phone(),
            options: .init(
                device: .virtualCPUFreq(socket: "/run/vcpufreq.sock", base: nil, mirror: true), dtbPath: "/tmp/g.dtb",
                accelerator: "tcg", cpu: "max"))
        #expect(rendering.arguments == [
            "-machine", "virt,gic-version=3", "-accel", "tcg,thread=multi", "-cpu", "max", "-smp", "8", "-m", "512M",
            "-name", "guest=android,debug-threads=on",
            "-device", "vcpufreq-cpufreq,socket=/run/vcpufreq.sock,vm-name=android,profile=android,base=0xc000000",
            "-dtb", "/tmp/g.dtb",
        ])
        #expect(rendering.machineArguments == Array(rendering.arguments[0..<10]), "what dumpdtb needs: no device, no -dtb")
        #expect(!rendering.arguments.contains { $0.contains("memory-backend") }, "the device maps its own memfd; guest RAM needs no sharing")
        #expect(rendering.notes.contains { $0.contains("0x1040000") && $0.contains("0xc000000") }, "why not the profile's base")
        #expect(rendering.notes.contains { $0.contains("scripts/build-qemu") })
        #expect(!rendering.notes.contains { $0.contains("thread=multi") }, "the accelerator is given")
        #expect(!rendering.notes.contains { $0.contains("-dtb") })
    }

    /// The device's base is the guest tree's: both renderers place the windows at the same address.
    @Test(arguments: SampleTopologies.all(tableMode: .table))
    func deviceBaseIsTheTreesBase(topology: Topology) throws {
        for base: UInt64? in [nil, 0x0c10_0000] {
            let rendering = try QEMUArguments.render(
                topology, options: .init(device: .virtualCPUFreq(socket: "/s", base: base, mirror: true)))
            let device = try #require(rendering.arguments.first { $0.hasPrefix("vcpufreq-cpufreq,") })
            let address = try #require(device.split(separator: ",").first { $0.hasPrefix("base=0x") }?.dropFirst(7))
            let value = try #require(UInt64(address, radix: 16))
            #expect(value == base ?? QEMUArguments.virtBase)
            let tree = try DeviceTree.render(topology, baseAddress: value)
            #expect(tree.contains("cpufreq@\(address) {"), "topology dt --base 0x\(address)")
            #expect(rendering.arguments.contains("\(try topology.model().vcpuCount)"), "-smp is the profile's vCPU count")
        }
    }

    @Test func ownBaseNoMirrorKVMAndANameWithCommas() throws {
        var topology = SampleTopologies.laptop()
        topology.vms[0].baseAddress = 0x0d00_0000
        topology.vms[0].pin = false
        let rendering = try QEMUArguments.render(
            topology,
            options: .init(
                device: .virtualCPUFreq(socket: "/tmp/a,b.sock", base: nil, mirror: false), memoryMiB: 1024,
                accelerator: "kvm", cpu: "host", name: "vm,1"))
        #expect(rendering.arguments.prefix(6) == ["-machine", "virt,gic-version=3", "-accel", "kvm", "-cpu", "host"])
        #expect(rendering.arguments.contains("guest=vm,,1,debug-threads=on"))
        // With `guest=` a name holding "=" stays the name (QEMU reads an
        // implied first element with "=" as a key; regression vm-name-with-equals).
        let equals = QEMUArguments.render(try topology.model(forVM: nil), options: .init(
            device: .virtualCPUFreq(socket: "/s", base: nil, mirror: true), name: "a=b"))
        #expect(equals.arguments.contains("guest=a=b,debug-threads=on"))
        #expect(rendering.arguments.last == "vcpufreq-cpufreq,socket=/tmp/a,,b.sock,vm-name=vm,,1,profile=crostini,base=0xd000000,mirror=off")
        #expect(!rendering.notes.contains { $0.contains("flash") }, "the profile's own base_address is used as it is")
        #expect(rendering.notes.contains { $0.contains("topology dt --base 0xd000000") }, "no -dtb: the note says which tree")
        #expect(!rendering.notes.contains { $0.contains("pins them") })
    }

    @Test func noAcceleratorNotesTheThreadRule() throws {
        let rendering = try QEMUArguments.render(
            SampleTopologies.server(), options: .init(device: .virtualCPUFreq(socket: "/s", base: nil, mirror: true)))
        #expect(!rendering.arguments.contains("-accel"))
        #expect(rendering.notes.contains { $0.contains("tcg,thread=multi") })
    }

    @Test func optionValuesDoubleCommas() {
        #expect(QEMUArguments.optionValue("a,b,,c") == "a,,b,,,,c")
        #expect(QEMUArguments.optionValue("/run/vcpufreq.sock") == "/run/vcpufreq.sock")
    }

    /// QEMU reads an option list byte by byte: ",," is a comma of the value,
    /// a lone "," ends it. A comma followed by a combining mark is one Swift
    /// Character, and was left single (the rest of the value became options).
    @Test(arguments: ["a,\u{301}b", ",\u{20E3}", "x,,\u{301},y", "/run/vm\r\n,sock", "\u{301},"])
    func optionValuesReadBackAsQEMUReadsThem(value: String) {
        let bytes = Array(QEMUArguments.optionValue(value).utf8)
        var decoded: [UInt8] = [], index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: ",") {
                guard index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: ",") else { break }
                index += 1
            }
            decoded.append(bytes[index])
            index += 1
        }
        #expect(decoded == Array(value.utf8), "\(QEMUArguments.optionValue(value).debugDescription)")
    }
}
