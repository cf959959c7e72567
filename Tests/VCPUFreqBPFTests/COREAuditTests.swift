import Foundation
import Testing

@testable import VCPUFreqBPF

/// The CO-RE audit: every field our programs read, checked against a
/// kernel's BTF by libbpf's relocation rules. Kernels are the running one
/// and small BTF "kernels" compiled here with clang, each shaped like a real
/// kernel's task_struct (7.3's `u8 on_cpu`) or like one that would break us.
@Suite struct COREAuditTests {
    /// The task_struct fields our programs read, with `onCPU` as the kernel
    /// declares it and `extra` for what else that kernel has.
    static func kernelSource(onCPU: String?, schedInfo: Bool = true, threadInfoCPU: Bool = true) -> String {
        """
        typedef unsigned char u8;
        typedef unsigned int u32;
        typedef unsigned long long u64;
        typedef int pid_t;
        struct thread_info { unsigned long flags; \(threadInfoCPU ? "u32 cpu;" : "") };
        struct sched_entity { u64 exec_start; u64 sum_exec_runtime; };
        struct sched_info { unsigned long pcount; unsigned long long run_delay; };
        struct task_struct {
            struct thread_info thread_info;
            unsigned int __state;
            \(onCPU.map { "\($0) on_cpu;" } ?? "")
            int prio;
            struct sched_entity se;
            \(schedInfo ? "struct sched_info sched_info;" : "")
            pid_t pid;
        };
        struct task_struct kernel_task_struct __attribute__((used));
        """
    }

    /// Compiles `source` for BPF with BTF and returns its `.BTF`.
    static func btf(of source: String) throws -> BTF {
        let clang = try #require(Support.which("clang"), "clang (Swift's own) compiles the fixture kernels")
        let directory = NSTemporaryDirectory() + "vcpufreq-core-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try source.write(toFile: directory + "/kernel.c", atomically: true, encoding: .utf8)
        let compiled = try Support.run([clang, "-target", "bpf", "-g", "-c", directory + "/kernel.c", "-o", directory + "/kernel.o"])
        try #require(compiled.status == 0, "\(compiled.error)")
        let object = try [UInt8](Data(contentsOf: URL(fileURLWithPath: directory + "/kernel.o")))
        return try BTF(try #require(try ELFSections(object).section(".BTF")))
    }

    static func audit(_ kernel: BTF) throws -> [String: COREAudit.Finding] {
        let findings = try COREAudit.audit(object: BundledObject.vcpufreq, kernel: kernel)
        return Dictionary(uniqueKeysWithValues: findings.map { ($0.field, $0) })
    }

    @Test func everyReadOfTheProgramsIsAudited() throws {
        let findings = try Self.audit(try Self.btf(of: Self.kernelSource(onCPU: "int")))
        #expect(Set(findings.keys) == [
            "task_struct.pid", "task_struct.se.sum_exec_runtime", "task_struct.sched_info.run_delay",
            "task_struct.on_cpu", "task_struct.thread_info.cpu",
        ])
        #expect(findings.values.allSatisfy { $0.verdict == .same }, "\(findings)")
        #expect(findings["task_struct.on_cpu"]?.programs == ["tp_btf/sched_wakeup", "tp_btf/sched_wakeup_new"])
    }

    /// Linux 7.3 made on_cpu a u8 (it was int up to 6.18). Declared signed,
    /// libbpf refused to shrink the load and on_sched_wakeup did not load.
    @Test func onCPUAsU8Of73IsResized() throws {
        let onCPU = try #require(try Self.audit(try Self.btf(of: Self.kernelSource(onCPU: "u8")))["task_struct.on_cpu"])
        #expect(onCPU.verdict == .resized, "\(onCPU)")
        #expect(onCPU.kernel == "u8 (unsigned, 1 byte)")
        #expect(onCPU.local == "unsigned int (unsigned, 4 bytes)")
    }

    /// The audit itself can fail: a field of another size that is signed in
    /// the kernel cannot be resized, nor can an int become a pointer, and a
    /// field that is gone is refused unless the programs test for it first.
    @Test func whatLibbpfWouldRefuseIsReported() throws {
        let signed = try Self.audit(try Self.btf(of: Self.kernelSource(onCPU: "signed char")))["task_struct.on_cpu"]
        #expect(signed?.verdict == .refused)
        #expect(signed?.reason?.contains("libbpf resizes loads of unsigned integers and pointers only") == true, "\(String(describing: signed))")

        let pointer = try Self.audit(try Self.btf(of: Self.kernelSource(onCPU: "void *")))["task_struct.on_cpu"]
        #expect(pointer?.verdict == .refused)
        #expect(pointer?.reason?.contains("incompatible kinds") == true)

        let gone = try Self.audit(try Self.btf(of: Self.kernelSource(onCPU: nil)))["task_struct.on_cpu"]
        #expect(gone?.verdict == .refused)
        #expect(gone?.kernel == "missing")
    }

    /// Reads behind bpf_core_field_exists (sched_info without
    /// CONFIG_SCHED_INFO, thread_info.cpu) may be missing.
    @Test func guardedFieldsMayBeAbsent() throws {
        let findings = try Self.audit(try Self.btf(of: Self.kernelSource(onCPU: "int", schedInfo: false, threadInfoCPU: false)))
        #expect(findings["task_struct.sched_info.run_delay"]?.verdict == .absentGuarded)
        #expect(findings["task_struct.thread_info.cpu"]?.verdict == .absentGuarded)
        #expect(findings["task_struct.pid"]?.verdict == .same)
    }

    /// The kernel this runs on (and its kvm module, where it has one) takes every read.
    @Test func theRunningKernelAcceptsEveryRead() throws {
        let path = "/sys/kernel/btf/vmlinux"
        guard let bytes = FileManager.default.contents(atPath: path) else {
            print("skipped: no \(path) (kernel without CONFIG_DEBUG_INFO_BTF)")
            return
        }
        var kernel = try BTF([UInt8](bytes))
        if let kvm = FileManager.default.contents(atPath: "/sys/kernel/btf/kvm") {
            kernel = try BTF([UInt8](kvm), base: kernel)
        }
        let findings = try COREAudit.audit(object: BundledObject.vcpufreq, kernel: kernel)
        #expect(findings.count >= 5)
        #expect(findings.allSatisfy { $0.verdict != .refused }, "\(findings.filter { $0.verdict == .refused })")
    }

    @Test(arguments: [
        ([UInt8](), "not BTF: no magic 0xeb9f at offset 0"),
        ([0x9F, 0xEB, 2, 0] + [UInt8](repeating: 0, count: 20), "BTF version 2, not 1"),
        ([0x9F, 0xEB, 1, 0, 24, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0, 0, 0] + [UInt8](repeating: 0, count: 8),
         "BTF header points beyond its 24 bytes"),
    ])
    func malformedBTFIsAnErrorNotACrash(bytes: [UInt8], message: String) {
        #expect(throws: BTF.ParseError(description: message)) { try BTF(bytes) }
    }

    @Test func malformedObjectsAreErrors() {
        #expect(throws: ELFSections.ParseError(description: "not an ELF file")) { try ELFSections([1, 2, 3]) }
        var truncated = Array(BundledObject.vcpufreq.prefix(64))
        truncated[0x3C] = 0xFF  // section count beyond the file
        #expect(throws: ELFSections.ParseError.self) { try ELFSections(truncated) }
        #expect(throws: COREAudit.AuditError.self) {
            try COREAudit.audit(object: Array(BundledObject.vcpufreq.prefix(64)), kernel: try BTF([0x9F, 0xEB, 1, 0, 24] + [UInt8](repeating: 0, count: 19)))
        }
    }
}
