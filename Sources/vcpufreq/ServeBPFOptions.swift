import ArgumentParser
import VCPUFreqBPF
import VCPUFreqServer

/// `vcpufreq serve`'s BPF options (docs/bpf.md).
struct ServeBPFOptions: ParsableArguments {
    @Flag(name: .customLong("no-bpf"), help: "Do not load the BPF programs: no host truth in status, no bpf-map clamp.")
    var noBPF = false

    @Option(
        name: .customLong("bpf-pin-path"),
        help: "Where to pin the util-hint map a sched_ext scheduler reads ('none': do not pin, no bpf-map clamp).")
    var pinPath = VCPUThreadMonitor.defaultUtilHintPinPath

    func validate() throws {
        guard pinPath == "none" || pinPath.hasPrefix("/") else {
            throw ValidationError("--bpf-pin-path: \"\(pinPath)\" is not an absolute path (or 'none')")
        }
    }

    var settings: ServerConfiguration.BPFSettings {
        ServerConfiguration.BPFSettings(enabled: !noBPF, utilHintPinPath: pinPath == "none" ? nil : pinPath)
    }
}
