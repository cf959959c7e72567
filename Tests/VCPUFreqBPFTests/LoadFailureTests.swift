import Foundation
import Testing

@testable import VCPUFreqBPF

extension KernelTests {
    @Suite struct LoadFailures {
        static let privilegeMessage = "loading BPF programs needs root, or CAP_BPF and CAP_PERFMON"

        @Test("an unprivileged start reports the documented message, not a crash",
              .enabled(if: getuid() == 0 && Support.which("setpriv") != nil, "needs root and setpriv"))
        func unprivileged() throws {
            let probe = Support.buildDirectory + "/vcpufreq-bpf-probe"
            try #require(FileManager.default.isExecutableFile(atPath: probe), "\(probe) not built")
            let setpriv = try #require(Support.which("setpriv"))
            let result = try Support.run([
                setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", probe, "--no-pin",
            ])
            #expect(result.status == 2, "\(result.output)\n\(result.error)")
            #expect(result.output.hasPrefix("BPF monitor: not available: \(Self.privilegeMessage)"), "\(result.output)")
            #expect(result.output.contains("uid 65534"))
        }

        @Test("a corrupt object fails to open with the documented message",
              arguments: [
                  ("garbage", Array("not an ELF object at all".utf8)),
                  ("empty", []),
                  ("truncated", Array(BundledObject.vcpufreq.prefix(600))),
              ] as [(String, [UInt8])])
        func corruptObject(label: String, bytes: [UInt8]) throws {
            #expect {
                _ = try BPFObject(bytes: bytes, name: label)
            } throws: { error in
                guard case BPFError.invalidObject(let object, _) = error else { return false }
                return object == label
                    && "\(error)".hasPrefix("BPF object \(label) is not a valid BPF ELF object: ")
            }
            var configuration = VCPUThreadMonitor.Configuration()
            configuration.objectBytes = bytes
            configuration.objectName = label
            configuration.utilHintPinPath = nil
            let status = VCPUThreadMonitor(configuration: configuration).start()
            guard case .failed(.invalidObject) = status.state else {
                Issue.record("expected invalidObject, got \(status)")
                return
            }
        }

        @Test("a program the verifier refuses is named, with the verifier's complaint",
              .enabled(if: Support.which("clang") != nil, "needs clang to build the bad program"))
        func verifierRejection() throws {
            let source = """
                #define SEC(name) __attribute__((section(name), used))
                typedef unsigned int __u32;
                struct { int (*type)[1]; int (*max_entries)[1]; __u32 *key; __u32 *value; } counts SEC(".maps");
                static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *) 1;
                SEC("tracepoint/sched/sched_switch")
                int reads_without_null_check(void *ctx)
                {
                    __u32 key = 0;
                    __u32 *value = bpf_map_lookup_elem(&counts, &key);
                    return *value;  /* no NULL check: the verifier must refuse */
                }
                char LICENSE[] SEC("license") = "GPL";
                """
            let directory = NSTemporaryDirectory() + "vcpufreq-bpf-\(getpid())"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try source.write(toFile: directory + "/bad.bpf.c", atomically: true, encoding: .utf8)
            let clang = try #require(Support.which("clang"))
            let compiled = try Support.run([
                clang, "-target", "bpf", "-O2", "-g", "-c", directory + "/bad.bpf.c", "-o", directory + "/bad.bpf.o",
            ])
            try #require(compiled.status == 0, "\(compiled.error)")
            let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/bad.bpf.o")))

            let object = try BPFObject(bytes: bytes, name: "bad")
            #expect {
                try object.load()
            } throws: { error in
                guard case BPFError.loadFailed(let name, let program, _, let log) = error else { return false }
                return name == "bad" && program == "reads_without_null_check"
                    && (log ?? "").contains("invalid mem access")
            }
            #expect(!object.isLoaded)
        }

        @Test("a missing tracepoint is reported, not fatal")
        func missingTracepoint() throws {
            // Tracepoints are looked up in an empty tracefs: none exists.
            let empty = NSTemporaryDirectory() + "vcpufreq-empty-tracefs-\(getpid())"
            try FileManager.default.createDirectory(atPath: empty + "/events", withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: empty) }
            let monitor = try Support.startedMonitor {
                $0.tracefsPath = empty
                $0.mountFileSystems = false
                $0.countKVMExits = true
            }
            let status = monitor.status
            for program in ["on_sched_switch", "on_sched_wakeup", "on_sched_wakeup_new", "on_sched_migrate_task"] {
                #expect(status.isAttached(program), "\(status)")
            }
            for tracepoint in ["kvm_exit", "kvm_userspace_exit", "kvm_mmio", "kvm_pio"] {
                #expect(status.missingReason("on_\(tracepoint)") == "no tracepoint kvm/\(tracepoint) in \(empty) (KVM not loaded, or this kernel does not have it)")
            }
            // Tracking works without them.
            try monitor.track(tid: 1)
            #expect(try monitor.exits(tid: 1) == ExitCounts())
        }

        @Test("attaching to a tracepoint that does not exist names program, target and reason")
        func attachToMissingTracepoint() throws {
            let object = try BPFObject(bytes: BundledObject.vcpufreq, name: "attach")
            for program in object.programs where program.section.hasPrefix("tracepoint/kvm/") {
                try object.setAutoload(false, program: program.name)
            }
            try object.setAutoload(true, program: "on_kvm_pio")
            try object.load()
            #expect {
                _ = try object.attachTracepoint(program: "on_kvm_pio", category: "kvm", name: "no_such_tracepoint")
            } throws: { error in
                guard case BPFError.attachFailed(let program, let target, let reason) = error else { return false }
                return program == "on_kvm_pio" && target == "tracepoint/kvm/no_such_tracepoint"
                    && reason.contains("No such file or directory")
            }
            #expect(throws: BPFError.notFound(kind: "program", name: "nope")) { _ = try object.attach(program: "nope") }
        }

        @Test("KVM exit counting can be switched off; it is then reported as such")
        func kvmSwitchedOff() throws {
            let monitor = try Support.startedMonitor { $0.countKVMExits = false }
            #expect(monitor.status.missingReason("on_kvm_mmio") == "KVM exit counting is switched off")
            #expect(monitor.status.isAttached("on_sched_switch"))
        }

        @Test("the KVM tracepoints attach when tracefs has them (mounting tracefs if needed)")
        func kvmTracepointsAttach() throws {
            let monitor = try Support.startedMonitor { $0.countKVMExits = true }
            let status = monitor.status
            let tracefs = VCPUThreadMonitor.Configuration().tracefsPath
            // start() mounted tracefs if it was not: it must be there now.
            #expect(FileSystems.mountedType(at: tracefs) == "tracefs", "\(status)")
            for tracepoint in ["kvm_exit", "kvm_userspace_exit", "kvm_mmio", "kvm_pio"] {
                if FileSystems.exists("\(tracefs)/events/kvm/\(tracepoint)") {
                    #expect(status.isAttached("on_\(tracepoint)"), "\(status)")
                } else {
                    #expect(status.missingReason("on_\(tracepoint)") != nil, "\(status)")
                }
            }
            if FileSystems.exists("/dev/kvm") {
                // KVM is here: its tracepoints exist (built in or module loaded).
                #expect(status.isAttached("on_kvm_userspace_exit"), "\(status)")
            }
        }
    }
}
