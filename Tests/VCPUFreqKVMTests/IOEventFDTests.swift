import Testing
import VCPUFreqCore
import VCPUFreqKVM

/// Doorbells registered as ioeventfds complete inside KVM: no userspace exit,
/// the eventfd counter grows by one per write (and coalesces).
@Suite(requiresKVM) struct IOEventFDTests {
    @Test(arguments: [1 as UInt32, 100, 5000])
    func doorbellWritesSignalTheEventfdWithoutExits(count: UInt32) throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let eventfd = try EventFD()
        _ = try vm.registerIOEventFD(gpa: doorbellAddress(0), length: 4, eventfd: eventfd.fileDescriptor)
        let run = try vm.vcpus[0].run(script: [.write32(doorbellAddress(0), value: 0, count: count)])
        #expect(run.exits.total == 0)
        #expect(handler.accesses.isEmpty)
        #expect(try eventfd.read() == UInt64(count))
        #expect(try eventfd.read() == nil)
    }

    @Test func datamatchSignalsOnlyItsValueAndDeregistrationRestoresExits() throws {
        let handler = RecordingHandler()
        let vm = try VirtualMachine(vcpuCount: 1, handler: handler)
        let eventfd = try EventFD()
        let doorbell = doorbellAddress(1)
        let registration = try vm.registerIOEventFD(
            gpa: doorbell, length: 4, eventfd: eventfd.fileDescriptor, datamatch: 1)
        let run = try vm.vcpus[0].run(script: [
            .write32(doorbell, value: 1, count: 5),
            .write32(doorbell, value: 2, count: 3),
        ])
        #expect(try eventfd.read() == 5)
        #expect(run.exits.mmioWrites == 3)
        #expect(handler.accesses == Array(repeating: Access(vcpu: 0, gpa: doorbell, width: 4, value: 2, isWrite: true), count: 3))

        try vm.deregisterIOEventFD(registration)
        let after = try vm.vcpus[0].run(script: [.write32(doorbell, value: 1, count: 4)])
        #expect(after.exits.mmioWrites == 4)
        #expect(try eventfd.read() == nil)
        #expect(throws: KVMError.self) { try vm.deregisterIOEventFD(registration) }
    }

    @Test func portDoorbellsWorkTheSameWay() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let eventfd = try EventFD()
        _ = try vm.registerIOEventFD(gpa: 0x520, length: 1, eventfd: eventfd.fileDescriptor, space: .port)
        let run = try vm.vcpus[0].run(script: [.portWrite(port: 0x520, width: .byte, value: 9, count: 50)])
        #expect(run.exits.total == 0)
        #expect(try eventfd.read() == 50)
    }

    @Test func badRegistrationsAreRefused() throws {
        let vm = try VirtualMachine(vcpuCount: 1)
        let eventfd = try EventFD()
        #expect(throws: KVMError.self) {
            try vm.registerIOEventFD(gpa: doorbellAddress(0), length: 3, eventfd: eventfd.fileDescriptor)
        }
        #expect(throws: KVMError.self) {
            try vm.registerIOEventFD(gpa: doorbellAddress(0), length: 0, eventfd: eventfd.fileDescriptor, datamatch: 1)
        }
    }
}
