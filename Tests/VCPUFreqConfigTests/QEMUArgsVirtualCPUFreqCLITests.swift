import Foundation
import Testing

/// `vcpufreq topology qemu-args --device virtual-cpufreq` from the command line.
@Suite(.serialized) struct QEMUArgsVirtualCPUFreqCLITests {
    @Test func rendersTheDeviceAndTheMachineOptions() throws {
        let lines = try CLI.run([
            "topology", "qemu-args", "Tests/Fixtures/topology/phone.toml", "--device", "virtual-cpufreq", "--socket", "/tmp/v.sock",
            "--accel", "tcg", "--no-mirror", "--name", "guest", "--format", "lines",
        ])
        #expect(lines.status == 0, "\(lines.stderr)")
        let words = lines.stdout.split(separator: "\n").map(String.init)
        #expect(words.last == "vcpufreq-cpufreq,socket=/tmp/v.sock,vm-name=guest,profile=android,base=0xc000000,mirror=off")
        #expect(words.contains("tcg,thread=multi") && words.contains("guest=guest,debug-threads=on"))
        #expect(lines.stderr.contains("note: QEMU writes no virtual-cpufreq node") && lines.stderr.contains("--base 0xc000000"))
        let machine = try CLI.run([
            "topology", "qemu-args", "Tests/Fixtures/topology/phone.toml", "--device", "virtual-cpufreq", "--base", "0x0c200000",
            "--machine-only", "--format", "lines",
        ])
        #expect(machine.status == 0 && machine.stderr == "")
        #expect(machine.stdout == "-machine\nvirt,gic-version=3\n-smp\n8\n-m\n512M\n")
        let shell = try CLI.run([
            "topology", "qemu-args", "Tests/Fixtures/topology/phone.toml", "--device", "virtual-cpufreq", "--base", "0x0c200000",
            "--dtb", "/tmp/g.dtb",
        ])
        #expect(shell.stdout.hasSuffix(
            "-device vcpufreq-cpufreq,socket=/run/vcpufreq.sock,vm-name=android,profile=android,base=0xc200000 \\\n-dtb /tmp/g.dtb\n"))
    }

    @Test func refusesFlagsOfTheOtherDevice() throws {
        let cases: [([String], String)] = [
            (["--device", "virtual-cpufreq", "--base", "0x123"], "--base"),
            (["--device", "virtual-cpufreq", "--base", "nowhere"], "--base"),
            (["--device", "virtual-cpufreq", "--transport", "pci"], "--transport"),
            (["--device", "virtual-cpufreq", "--name", ""], "--name"),
            (["--device", "scmi", "--base", "0xc000000"], "--base"),
            (["--no-mirror"], "--no-mirror"),
        ]
        for (flags, named) in cases {
            let run = try CLI.run(["topology", "qemu-args", "Tests/Fixtures/topology/phone.toml"] + flags)
            #expect(run.status != 0 && run.stderr.contains(named) && run.stdout.isEmpty, "\(flags): \(run.stderr)")
        }
    }
}
