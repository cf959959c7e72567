import Foundation
import Glibc
import SystemPackage
import Testing
import VCPUFreqCore
@testable import VCPUFreqLinux

@Suite struct RecordingActuatorTests {
    func recordedLines(_ body: (RecordingActuator) throws -> Void) throws -> [String] {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let writer = FileDescriptor(rawValue: fds[1])
        do {
            let recorder = RecordingActuator(descriptor: writer, closeOnDeinit: true, clock: { 1_234_567_890_123 })
            try body(recorder)
        }
        let handle = FileHandle(fileDescriptor: fds[0], closeOnDealloc: true)
        let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
        #expect(text.hasSuffix("\n"))
        return text.split(separator: "\n").map(String.init)
    }

    @Test func linesAreTheDocumentedJSON() throws {
        let target = ThreadTarget(tid: 42, pid: 40, vm: "phone", vcpu: 3, domain: 1)
        let lines = try recordedLines { recorder in
            try recorder.record(.apply, target: target, hint: HostHint(
                utilMin: 512, utilMax: 1024, latency: .slice(microseconds: 300), affinity: CPUList([0, 1, 2, 3, 6])))
            try recorder.record(.apply, target: target, hint: HostHint(utilMin: 0, utilMax: 7, latency: .nice(-20)))
            try recorder.record(.restore, target: target, hint: HostHint())
        }
        #expect(lines == [
            #"{"t_ns":1234567890123,"action":"apply","tid":42,"vm":"phone","vcpu":3,"util_min":512,"util_max":1024,"latency":"slice=300us","cpus":"0-3,6"}"#,
            #"{"t_ns":1234567890123,"action":"apply","tid":42,"vm":"phone","vcpu":3,"util_min":0,"util_max":7,"latency":"nice=-20"}"#,
            #"{"t_ns":1234567890123,"action":"restore","tid":42,"vm":"phone","vcpu":3,"util_min":0,"util_max":1024,"latency":"none"}"#,
        ])
    }

    @Test(arguments: ["plain", "quote\"d", "back\\slash", "tab\tnew\nline", "ünïcode", "\u{1}"])
    func vmNamesSurviveAJSONParser(name: String) throws {
        let target = ThreadTarget(tid: -1, pid: 0, vm: name, vcpu: Int.max, domain: 0)
        let lines = try recordedLines { try $0.record(.capture, target: target, hint: HostHint(affinity: CPUList([]))) }
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(object["vm"] as? String == name)
        #expect(object["tid"] as? Int == -1)
        #expect(object["vcpu"] as? Int == Int.max)
        #expect(object["cpus"] as? String == "")
    }

    @Test func recordsThroughAFileHandle() throws {
        let pipe = Pipe()
        do {
            let recorder = RecordingActuator(fileHandle: pipe.fileHandleForWriting, clock: { 9 })
            try recorder.record(.capture, target: ThreadTarget(tid: 1, pid: 1, vm: "v", vcpu: 0, domain: 0), hint: HostHint())
        }
        try pipe.fileHandleForWriting.close()
        let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(text == #"{"t_ns":9,"action":"capture","tid":1,"vm":"v","vcpu":0,"util_min":0,"util_max":1024,"latency":"none"}"# + "\n")
    }

    @Test func originalHintOfASnapshot() {
        let snapshot = ThreadSnapshot(utilClamp: .init(min: 10, max: 900), affinity: CPUList([1]))
        #expect(RecordingActuator.originalHint(snapshot) == HostHint(utilMin: 10, utilMax: 900, affinity: CPUList([1])))
        #expect(RecordingActuator.originalHint(ThreadSnapshot()) == HostHint())
    }

    @Test func recordsBesideRealActuation() throws {
        // "record AND apply": the controller applies and the line says what.
        let scratch = try ScratchThread()
        let hook = SyscallHook()
        hook.on("setpriority", .succeed())
        let lines = try recordedLines { recorder in
            let control = ThreadController(clamp: nil, latency: LatencyActuator(), affinity: nil, recorder: recorder)
            try SyscallHook.withHook(hook) {
                let thread = try control.attach(tid: scratch.tid, vm: "vm", vcpu: 0, domain: 0)
                try control.apply(HostHint(latency: .nice(2)), previous: nil, to: thread)
            }
        }
        #expect(hook.calls(named: "setpriority").map(\.arguments) == [[Int64(scratch.tid), 2]])
        #expect(lines.count == 2)
        #expect(lines[1].contains(#""action":"apply","tid":\#(scratch.tid),"#))
        #expect(lines[1].contains(#""latency":"nice=2""#))
    }
}
