import Testing
import VCPUFreqKVM

@Test func smoke() throws {
    let vm = try VirtualMachine(vcpuCount: 1)
    let r = try vm.vcpus[0].run(script: [.write32(0x1000_0000, value: 7, count: 3), .read32(0x1000_0000, count: 2), .spin(iterations: 1000)])
    print(r.results, r.exits, r.duration)
}
