// vcpufreq-bpf-probe [--pin PATH | --no-pin] [--object PATH]
//
// Starts a VCPUThreadMonitor and prints its status; exit status 0 when it
// runs, 2 when it could not load. The tests run it as uid 65534 (setpriv) to
// check what an unprivileged start reports.
import Glibc
import VCPUFreqBPF

var configuration = VCPUThreadMonitor.Configuration()
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--no-pin":
        configuration.utilHintPinPath = nil
    case "--pin":
        configuration.utilHintPinPath = arguments.popFirst()
    default:
        print("usage: vcpufreq-bpf-probe [--pin PATH | --no-pin]")
        exit(64)
    }
}
let monitor = VCPUThreadMonitor(configuration: configuration)
let status = monitor.start()
print(status)
exit(status.isRunning ? 0 : 2)
