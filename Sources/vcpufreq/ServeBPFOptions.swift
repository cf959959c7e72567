import ArgumentParser
import VCPUFreqBPF
import VCPUFreqServer

/// `vcpufreq serve`'s BPF options (docs/bpf.md).
struct ServeBPFOptions: ParsableArguments {
    @Flag(name: .customLong("no-bpf"), help: "Do not load the BPF programs: no host truth in status, no bpf-map clamp.")
    var noBPF = false

    @Option(
        name: .customLong("bpf-pin-path"),
        help: ArgumentHelp(
            "Where to pin the util-hint map a sched_ext scheduler reads ('none': do not pin, no bpf-map clamp).",
            discussion: "Default: \(VCPUThreadMonitor.defaultUtilHintPinPath) with the default --state-dir, else "
                + "/sys/fs/bpf/vcpufreq-<instance>/util_hint (docs/bpf.md)."))
    var pinPath: String?

    func validate() throws {
        guard let pinPath, pinPath != "none" else { return }
        guard pinPath.hasPrefix("/") else {
            throw ValidationError("--bpf-pin-path: \"\(pinPath)\" is not an absolute path (or 'none')")
        }
    }

    var settings: ServerConfiguration.BPFSettings {
        let pin: ServerConfiguration.BPFSettings.Pin
        switch pinPath {
        case nil: pin = .instance
        case "none": pin = .none
        case let path?: pin = .path(path)
        }
        return ServerConfiguration.BPFSettings(enabled: !noBPF, utilHintPin: pin)
    }
}
