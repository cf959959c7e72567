import ArgumentParser
import Glibc
import SystemPackage
import VCPUFreqClient
import VCPUFreqKVM
import VCPUFreqVMM

struct VMM: ParsableCommand {
    /// Exit status when KVM cannot be used here (sysexits' EX_UNAVAILABLE):
    /// callers fall back to something that needs no KVM (`vcpufreq demo`).
    static let kvmUnavailableStatus: Int32 = 69

    static let configuration = CommandConfiguration(
        commandName: "vmm",
        abstract: "Run a real KVM guest against the daemon: the reference VMM as a vcpufreq client.",
        discussion: """
            Creates a VM whose vCPUs (one host thread each) run a guest program, attaches their threads to the daemon, \
            maps the shared page, the read-only register mirror and the doorbells, and forwards the remaining MMIO exits. \
            Prints per vCPU what the guest asked, what the daemon applied, the exits and their cost.
            With --topology FILE (and no --socket) it starts its own `vcpufreq serve` on a private socket and stops it \
            at the end. Exits with status 69 when this machine has no usable KVM.
            """
    )

    @Option(help: "Socket of a running daemon (`vcpufreq serve --socket PATH`).")
    var socket: String?

    @Option(help: "Start a daemon of our own with this topology file (unless --socket is given).")
    var topology: String?

    @Option(help: "The VM profile to attach with (default: the topology's first [[vm]]).")
    var profile: String?

    @Option(name: .customLong("vm-name"), help: "Name of the VM at the daemon (default: vmm-<pid>).")
    var vmName: String?

    @Option(help: "vCPUs (default: the profile's, read from --topology; 2 without it).")
    var vcpus: Int?

    @Option(help: "Guest program: \(GuestProgram.allCases.map(\.rawValue).joined(separator: ", ")).")
    var script: GuestProgram = .demo

    @Flag(name: .customLong("no-mirror"), help: "Do not map the read-only register mirror (cur_perf loads exit).")
    var noMirror = false

    @Flag(name: .customLong("no-doorbells"), help: "Do not register the doorbells as ioeventfds (kicks exit).")
    var noDoorbells = false

    @Flag(name: .customLong("no-shared-page"), help: "Forward every access; no shared memory at all.")
    var noSharedPage = false

    @Flag(name: .customLong("per-vcpu"), help: "Every phase row by row for each vCPU, and exits by reason.")
    var perVCPU = false

    @Option(name: .customLong("kvm-device"), help: "The KVM device.")
    var kvmDevice = KVMSystem.defaultDevicePath.string

    @Flag(name: .customLong("dry-run"), help: "Our own daemon records hints instead of applying them.")
    var dryRun = false

    @Flag(name: .customLong("no-pin"), help: "Our own daemon does not pin vCPU threads.")
    var noPin = false

    func validate() throws {
        guard socket != nil || topology != nil else {
            throw ValidationError("give --socket PATH (a running daemon) or --topology FILE (start one)")
        }
        if let vcpus, !(1...1024).contains(vcpus) { throw ValidationError("--vcpus must be 1...1024") }
        if socket != nil, dryRun || noPin {
            throw ValidationError("--dry-run and --no-pin configure our own daemon: use them with --topology only")
        }
    }

    func run() throws {
        // KVM first: a machine without it fails fast, before any daemon starts.
        let system: KVMSystem
        do {
            system = try KVMSystem(devicePath: FilePath(kvmDevice))
        } catch {
            printError("vcpufreq vmm: KVM is not usable here: \(error)")
            throw ExitCode(Self.kvmUnavailableStatus)
        }
        var profileVCPUs: Int?
        if let topology {
            let loaded = try TopologyFileOptions(file: topology, vm: profile).load()
            profileVCPUs = loaded.profile(named: profile)?.vcpuCount
        }
        var daemon: DaemonProcess?
        let socketPath: String
        if let socket {
            socketPath = socket
        } else {
            var arguments = ["--log-level", "warning"]
            if dryRun { arguments.append("--dry-run") }
            if noPin { arguments.append("--no-pin") }
            let started: DaemonProcess
            do {
                started = try DaemonProcess(executable: Self.ownExecutable(), topology: topology ?? "", arguments: arguments)
            } catch {
                throw CLIError("\(error)")
            }
            daemon = started
            socketPath = started.socketPath
        }
        defer {
            if let daemon {
                let status = daemon.stop()
                print("our daemon (pid \(daemon.pid)) stopped" + (daemon.exitedCleanly ? "" : " (\(status.map(String.init(describing:)) ?? "not collected"))"))
            }
        }
        let options = ConnectedVM.Options(
            vmName: vmName ?? "vmm-\(getpid())", profile: profile ?? "", vcpuCount: vcpus ?? profileVCPUs ?? 2,
            sharedPage: !noSharedPage, mirror: !noMirror && !noSharedPage, doorbells: !noDoorbells && !noSharedPage)
        do {
            let client: VCPUFreqClient
            do {
                client = try VCPUFreqClient(socketPath: socketPath, clientName: "vcpufreq vmm")
            } catch {
                throw VMMError.daemonUnreachable(socketPath: socketPath, error)
            }
            let vm = try ConnectedVM(system: system, client: client, options: options)
            let report = try ProgramRunner(vm: vm).run(script)
            let origin = daemon.map { "our own daemon (pid \($0.pid))" } ?? socketPath
            print(VMMReport.render(report, socketPath: origin, perVCPU: perVCPU), terminator: "")
            let restored = try vm.detach()
            print("detached: the daemon restored \(restored) vCPU threads")
        } catch let error as VMMError {
            if error.isKVMUnavailable {
                printError("vcpufreq vmm: \(error)")
                throw ExitCode(Self.kvmUnavailableStatus)
            }
            if let daemon, !daemon.isRunning { printError("our daemon exited:\n\(daemon.log)") }
            throw CLIError("\(error)")
        }
    }

    /// This executable (to start `vcpufreq serve` from the same build).
    static func ownExecutable() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return CommandLine.arguments[0] }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension GuestProgram: ExpressibleByArgument {}
