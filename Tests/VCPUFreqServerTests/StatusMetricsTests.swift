import Foundation
import Glibc
import Testing
import VCPUFreqClient

/// A parsed Prometheus text exposition (format 0.0.4): families with their
/// TYPE and samples. Parsing fails the test on any line that is not a
/// comment or `name{labels} value`, on a sample before its TYPE, on a
/// repeated family, and on a value that is not a number.
struct PrometheusText {
    struct Sample: Equatable {
        var name: String
        var labels: [String: String]
        var value: Double
    }

    var types: [String: String] = [:]
    var samples: [Sample] = []

    init(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
        var current: String?
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) where !line.isEmpty {
            if line.hasPrefix("# HELP ") { continue }
            if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, ["counter", "gauge", "untyped", "histogram", "summary"].contains(parts[1]) else {
                    Issue.record("bad TYPE line: \(line)", sourceLocation: sourceLocation)
                    continue
                }
                let name = String(parts[0])
                if types[name] != nil { Issue.record("family \(name) twice", sourceLocation: sourceLocation) }
                types[name] = String(parts[1])
                current = name
                continue
            }
            guard let sample = Self.sample(line) else {
                Issue.record("not a sample line: \(line)", sourceLocation: sourceLocation)
                continue
            }
            if sample.name != current, !Self.isHistogramPart(sample.name, of: current, types) {
                Issue.record("sample \(sample.name) outside its family", sourceLocation: sourceLocation)
            }
            samples.append(sample)
        }
    }

    /// `family_bucket`, `family_sum` and `family_count` samples belong to a histogram family.
    static func isHistogramPart(_ name: String, of family: String?, _ types: [String: String]) -> Bool {
        guard let family, types[family] == "histogram" else { return false }
        return ["_bucket", "_sum", "_count"].contains { name == family + $0 }
    }

    /// `name{a="x",b="y"} value`, with \\ \" \n escapes in label values.
    static func sample(_ line: Substring) -> Sample? {
        let chars = Array(line)
        var index = 0
        var name = ""
        while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" || chars[index] == ":" {
            name.append(chars[index])
            index += 1
        }
        guard !name.isEmpty, !(name.first!.isNumber) else { return nil }
        var labels: [String: String] = [:]
        if index < chars.count, chars[index] == "{" {
            index += 1
            while index < chars.count, chars[index] != "}" {
                var key = ""
                while index < chars.count, chars[index] != "=" {
                    key.append(chars[index])
                    index += 1
                }
                guard index + 1 < chars.count, chars[index + 1] == "\"" else { return nil }
                index += 2
                var value = ""
                while index < chars.count, chars[index] != "\"" {
                    if chars[index] == "\\", index + 1 < chars.count {
                        index += 1
                        value.append(chars[index] == "n" ? "\n" : chars[index])
                    } else {
                        value.append(chars[index])
                    }
                    index += 1
                }
                guard index < chars.count else { return nil }
                index += 1
                labels[key] = value
                if index < chars.count, chars[index] == "," { index += 1 }
            }
            guard index < chars.count else { return nil }
            index += 1
        }
        guard index < chars.count, chars[index] == " " else { return nil }
        guard let value = Double(String(chars[(index + 1)...])) else { return nil }
        return Sample(name: name, labels: labels, value: value)
    }

    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }
}

extension DaemonTests {
    @Suite struct StatusAndMetrics {
        @Test func statusTextAndJSON() throws {
            let daemon = try Daemon(topology: TestTopology.toml())
            let vm = try AttachedVM(daemon: daemon, name: "watched \"vm\"")
            try vm.client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: 1_500_000)
            try vm.client.write(vcpu: 1, offset: Offset.utilHint(1, Offset.utilHint), value: 42, sync: true)

            let text = try runProgram([vcpufreqBinary, "status", "--socket", daemon.socketPath])
            #expect(text.status == 0, "\(text.error)")
            #expect(text.output.hasPrefix("vcpufreq 0.1.0 pid \(daemon.pid)"), "\(text.output)")
            #expect(text.output.contains("1 VMs, 2 vCPUs"))
            #expect(text.output.contains("actuators: clamp="))
            #expect(text.output.contains("vm \"watched \"vm\"\" (id 1, profile regs, pid \(getpid()))"), "\(text.output)")
            for tid in vm.threads.tids { #expect(text.output.contains(" \(tid) "), "tid \(tid) in\n\(text.output)") }
            #expect(text.output.contains("set_perf 1500000 kHz"))
            #expect(text.output.contains("util_hint util 42"))

            let json = try runProgram([vcpufreqBinary, "status", "--socket", daemon.socketPath, "--json"])
            #expect(json.status == 0, "\(json.error)")
            let document = try #require(try JSONSerialization.jsonObject(with: Data(json.output.utf8)) as? [String: Any])
            let daemonPart = try #require(document["daemon"] as? [String: Any])
            #expect(daemonPart["pid"] as? Int == Int(daemon.pid))
            #expect(daemonPart["dry_run"] as? Bool == false)
            let capabilities = try #require(daemonPart["capabilities"] as? [String: String])
            #expect(Set(capabilities.keys) == ["uclamp", "cgroup_uclamp", "eevdf_slice", "nice", "affinity", "bpf_map", "bpf_map_page"])
            let vms = try #require(document["vms"] as? [[String: Any]])
            #expect(vms.count == 1)
            let entry = try #require(vms.first)
            #expect(entry["name"] as? String == "watched \"vm\"")
            #expect(entry["actuators"] as? String == vm.attach.actuators)
            let vcpus = try #require(entry["vcpus"] as? [[String: Any]])
            #expect(vcpus.compactMap { $0["tid"] as? Int } == vm.threads.tids.map(Int.init))
            #expect(vcpus.compactMap { $0["util_min"] as? Int } == [TestTopology.utilization(forKHz: 1_500_000), 42])
            let counters = try #require(entry["counters"] as? [String: Any])
            #expect(counters["requests"] as? Int == 2)
            #expect(entry["peer_pid"] as? Int == Int(getpid()))

            // Capability detection is in the log, one line per facet.
            for facet in capabilities.keys { #expect(daemon.log.contains("facet=\(facet)"), "\(facet)") }
            #expect(daemon.log.contains("plan=clamp="))
        }

        /// The metrics file parses as Prometheus text, is rewritten at its
        /// interval (100 ms here) and its counters move with the guest.
        @Test func metricsFile() throws {
            let daemon = try Daemon(topology: TestTopology.toml(), metricsIntervalMilliseconds: 100)
            // A name with a quote and a backslash: label values must be escaped.
            let name = #"met"ered\"#
            let vm = try AttachedVM(daemon: daemon, name: name)
            let labels0 = ["vm": name, "vcpu": "0"]
            func metrics() -> PrometheusText? {
                guard let text = try? String(contentsOfFile: daemon.metricsPath, encoding: .utf8) else { return nil }
                return PrometheusText(text)
            }
            #expect(eventually { metrics()?.value("vcpufreq_vms") == 1 })
            let before = try #require(metrics())
            #expect(before.types["vcpufreq_requests_total"] == "counter")
            #expect(before.types["vcpufreq_vcpus"] == "gauge")
            #expect(before.value("vcpufreq_vcpus") == 2)
            #expect(before.value("vcpufreq_requests_total", labels0) == 0)
            #expect(before.value("vcpufreq_cur_perf_khz", labels0) == Double(TestTopology.maxKHz))
            for (name, type) in before.types where type == "counter" { #expect(name.hasSuffix("_total"), "\(name)") }

            for kHz in [1_000_000, 1_500_000, 2_000_000] {
                try vm.client.write(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf), value: UInt64(kHz))
            }
            _ = try vm.client.read(vcpu: 0, offset: Offset.upstream(0, Offset.setPerf))  // invalid: read of write-only
            #expect(eventually { metrics()?.value("vcpufreq_requests_total", labels0) == 3 })
            let after = try #require(metrics())
            #expect(after.value("vcpufreq_util_min", labels0) == 1000)
            #expect(after.value("vcpufreq_hints_applied_total", labels0)! > before.value("vcpufreq_hints_applied_total", labels0)!)
            #expect(after.value("vcpufreq_accesses_total", ["vm": name]) == 4)
            #expect(after.value("vcpufreq_invalid_accesses_total", ["vm": name, "kind": "read_of_write_only"]) == 1)
            #expect(after.value("vcpufreq_up_seconds")! > 0)
            // Written by rename: no temporary file is left behind.
            #expect(!FileManager.default.fileExists(atPath: daemon.metricsPath + ".tmp"))
            // SIGTERM: the writer finishes the last state (every VM detached) before the daemon exits.
            let stopped = daemon.stop()
            #expect(stopped.status == 0 && !stopped.signaled)
            #expect(metrics()?.value("vcpufreq_vms") == 0)
            #expect(metrics()?.value("vcpufreq_vcpus") == 0)
        }
    }
}
