// swift-tools-version:6.0
//
// Layers, from pure to effectful:
//   VCPUFreqCore    device model (three guest ABIs), topology, policy, trace replay. No I/O, no Foundation.
//   CVCPUFreqABI    the C headers we ship to VMM and guest authors; tests prove them equal to the Swift layout.
//   VCPUFreqProtocol the VMM <-> daemon wire protocol v1: a pure, bounds-checked codec.
//   VCPUFreqConfig  the human-edited TOML topology file -> Topology (TOMLKit), with key paths and lines.
//   CVCPUFreqSys    the one C shim: syscalls Swift cannot call directly (variadic, macros, gettid).
//   VCPUFreqLinux   sysfs probing and the other thin I/O around the core.
//   CVCPUFreqKVM    KVM ioctl wrappers and the guest script interpreter (.S) of the reference VMM.
//   VCPUFreqKVM     the reference VMM: a minimal real KVM VMM (memslots, ioeventfd, vCPU threads).
//   VCPUFreqVMM     the reference VMM as a daemon client: attach, shared page, mirror, doorbells, guest programs.
//   VCPUFreqVhostUser the vhost-user back-end protocol and split virtqueues over abstract guest memory: pure,
//                   device-agnostic (never knows SCMI).
//   VCPUFreqSCMI    the SCMI platform (base + performance protocols) over request/response bytes: pure, never sees
//                   a ring; LEVEL_SET/LIMITS_SET become the same GuestRequest the other ABIs produce.
//   VCPUFreqServer  the daemon (`vcpufreq serve`): epoll loop, protocol, shared memory, actuation.
//   VCPUFreqClient  the client library VMM authors (and the tests) use to talk to the daemon; also a vhost-user
//                   front-end playing QEMU's vhost-user-scmi (tests, benchmark).
//   VCPUFreqBenchSupport what every benchmark shares: machine description, latency summaries and histogram,
//                   progress, result files (JSON, Markdown, SVG, README sections), the daemon's topology file,
//                   thread accounting, CPU hogs, the crosvm-style device handled in the VMM thread.
//   VCPUFreqDoorbellBench  `vcpufreq bench doorbell`: request paths and read paths side by side on real KVM.
//   VCPUFreqWorkloadBench  `vcpufreq bench workload`: PCMark-style guest workloads per configuration, external A/B.
//   vcpufreq        the command-line tool, one file per subcommand.
//   CLibBPF         libbpf (pkg-config) and bpf/vcpufreq_bpf.h; only VCPUFreqBPF/LibBPF.swift imports it.
//   VCPUFreqBPF     BPF programs of bpf/ (compiled and embedded by BPFObjectPlugin) and their loader, the
//                   util-hint map actuator, host truth for STATUS and `vcpufreq stats`; used by the daemon.
//   VCPUFreqBench   `vcpufreq bench daemon`: the real daemon driven by a load generator (emulated VMMs);
//                   Sched/: `vcpufreq bench sched` and `vcpufreq scheduler selftest` (the sched_ext scheduler).
//   CVCPUFreqMallocCounter  LD_PRELOAD allocation counter the daemon benchmark loads into the daemon.
//   VCPUFreqKernelLab  the facets scripts/test-kernels runs inside QEMU guests on Debian's kernels: the real
//                   daemon against threads of its own, every hint read back from the kernel; the report matrix.
//   vcpufreq-kernel-lab  its command (`guest` in the guest, `report` on the host, `vmm` a VMM to kill).
import PackageDescription

let package = Package(
    name: "vcpufreq",
    products: [
        .executable(name: "vcpufreq", targets: ["vcpufreq"]),
        .library(name: "VCPUFreqCore", targets: ["VCPUFreqCore"]),
        // Never linked into anything: `vcpufreq bench daemon` LD_PRELOADs it into the daemon it starts.
        .library(name: "VCPUFreqMallocCounter", type: .dynamic, targets: ["CVCPUFreqMallocCounter"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/apple/swift-atomics", from: "1.3.0"),
        .package(url: "https://github.com/LebJe/TOMLKit", from: "0.6.0"),
    ],
    targets: [
        .target(name: "VCPUFreqCore"),
        .target(name: "CVCPUFreqABI"),
        .target(name: "VCPUFreqProtocol"),
        .target(
            name: "VCPUFreqConfig",
            dependencies: ["VCPUFreqCore", .product(name: "TOMLKit", package: "TOMLKit")]
        ),
        .target(name: "CVCPUFreqSys"),
        .target(name: "VCPUFreqVhostUser", dependencies: [.product(name: "Atomics", package: "swift-atomics")]),
        .target(name: "VCPUFreqSCMI", dependencies: ["VCPUFreqCore"]),
        .target(
            name: "VCPUFreqLinux",
            dependencies: [
                "VCPUFreqCore", "CVCPUFreqSys",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ],
            // Debug builds can trace syscalls and fail them on purpose (SyscallHook);
            // release builds compile the hook out of every wrapper.
            swiftSettings: [.define("VCPUFREQ_SYSCALL_HOOKS", .when(configuration: .debug))]
        ),
        .target(name: "CVCPUFreqKVM"),
        .target(
            name: "VCPUFreqKVM",
            dependencies: [
                "VCPUFreqCore", "CVCPUFreqKVM",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "VCPUFreqServer",
            dependencies: [
                "VCPUFreqCore", "VCPUFreqProtocol", "VCPUFreqLinux", "VCPUFreqBPF", "VCPUFreqVhostUser", "VCPUFreqSCMI",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "VCPUFreqClient",
            dependencies: ["VCPUFreqProtocol", "VCPUFreqLinux", "VCPUFreqVhostUser", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .target(
            name: "VCPUFreqVMM",
            dependencies: [
                "VCPUFreqKVM", "CVCPUFreqKVM", "VCPUFreqClient", "VCPUFreqCore", "VCPUFreqProtocol", "VCPUFreqLinux",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(name: "CVCPUFreqMallocCounter"),
        .target(
            name: "VCPUFreqBenchSupport",
            dependencies: [
                "VCPUFreqCore", "VCPUFreqLinux", "VCPUFreqKVM", .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "VCPUFreqBench",
            dependencies: [
                "VCPUFreqBenchSupport", "VCPUFreqClient", "VCPUFreqProtocol", "VCPUFreqCore", "VCPUFreqLinux", "VCPUFreqBPF",
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // `vcpufreq bench doorbell`: the four request paths and the two read paths side by side on real KVM.
        .target(
            name: "VCPUFreqDoorbellBench",
            dependencies: [
                "VCPUFreqBenchSupport", "VCPUFreqVMM", "VCPUFreqKVM", "VCPUFreqClient", "VCPUFreqProtocol", "VCPUFreqLinux", "VCPUFreqCore",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // `vcpufreq bench workload`: PCMark-style guest workloads per configuration on real KVM, and external A/B runs.
        .target(
            name: "VCPUFreqWorkloadBench",
            dependencies: [
                "VCPUFreqBenchSupport", "VCPUFreqVMM", "VCPUFreqKVM", "VCPUFreqClient", "VCPUFreqProtocol", "VCPUFreqCore",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "vcpufreq",
            dependencies: [
                "VCPUFreqCore", "VCPUFreqConfig", "VCPUFreqLinux", "VCPUFreqServer", "VCPUFreqProtocol", "VCPUFreqClient",
                "VCPUFreqVMM", "VCPUFreqKVM", "VCPUFreqBPF", "VCPUFreqBench", "VCPUFreqBenchSupport", "VCPUFreqDoorbellBench",
                "VCPUFreqWorkloadBench",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "VCPUFreqKernelLab",
            dependencies: [
                "VCPUFreqBench", "VCPUFreqBPF", "VCPUFreqClient", "VCPUFreqLinux", "VCPUFreqProtocol",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .executableTarget(
            name: "vcpufreq-kernel-lab",
            dependencies: ["VCPUFreqKernelLab", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .testTarget(name: "VCPUFreqKernelLabTests", dependencies: ["VCPUFreqKernelLab", "vcpufreq-kernel-lab", "vcpufreq"]),
        .systemLibrary(name: "CLibBPF", pkgConfig: "libbpf", providers: [.apt(["libbpf-dev"])]),
        .executableTarget(name: "vcpufreq-bpf-embed", path: "Plugins/BPFEmbed"),
        .plugin(name: "BPFObjectPlugin", capability: .buildTool(), dependencies: ["vcpufreq-bpf-embed"]),
        .target(
            name: "VCPUFreqBPF",
            dependencies: [
                "VCPUFreqCore", "CLibBPF", "CVCPUFreqSys", "VCPUFreqLinux", "VCPUFreqProtocol",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            plugins: ["BPFObjectPlugin"]
        ),
        // Loads the monitor and prints its status: the tests run it as uid 65534.
        .executableTarget(
            name: "vcpufreq-bpf-probe", dependencies: ["VCPUFreqBPF"], path: "Tests/VCPUFreqBPFProbe"
        ),
        .testTarget(
            name: "VCPUFreqBPFTests",
            dependencies: [
                "VCPUFreqTestSupport", "VCPUFreqBPF", "VCPUFreqCore", "CVCPUFreqSys", "VCPUFreqLinux", "VCPUFreqProtocol", "VCPUFreqClient",
                "VCPUFreqKVM", "VCPUFreqVMM", "vcpufreq-bpf-probe", "vcpufreq",
            ]
        ),
        // What the test targets share: running a program with both outputs read side by side.
        .target(name: "VCPUFreqTestSupport", path: "Tests/VCPUFreqTestSupport"),
        .testTarget(name: "VCPUFreqCoreTests", dependencies: ["VCPUFreqCore", "CVCPUFreqABI", "VCPUFreqLinux", "VCPUFreqTestSupport"]),
        // Hostile-input tests of the vhost-user codec, the back-end state machine and the split virtqueue (fake memory).
        .testTarget(name: "VCPUFreqVhostUserTests", dependencies: ["VCPUFreqVhostUser"]),
        .testTarget(name: "VCPUFreqSCMITests", dependencies: ["VCPUFreqSCMI", "VCPUFreqCore", "VCPUFreqVhostUser"]),
        .testTarget(name: "VCPUFreqConfigTests", dependencies: ["VCPUFreqTestSupport", "VCPUFreqCore", "VCPUFreqConfig", "VCPUFreqLinux", .product(name: "TOMLKit", package: "TOMLKit")]),
        .testTarget(name: "VCPUFreqProtocolTests", dependencies: ["VCPUFreqProtocol", "CVCPUFreqABI"]),
        .testTarget(
            name: "VCPUFreqKVMTests",
            dependencies: ["VCPUFreqKVM", "VCPUFreqCore", "VCPUFreqLinux", .product(name: "SystemPackage", package: "swift-system")]
        ),
        // Real KVM guests against a real daemon process (.build/<config>/vcpufreq, built as a dependency).
        .testTarget(
            name: "VCPUFreqEndToEndTests",
            dependencies: [
                "VCPUFreqTestSupport", "VCPUFreqVMM", "VCPUFreqKVM", "VCPUFreqClient", "VCPUFreqProtocol", "VCPUFreqCore", "VCPUFreqConfig",
                "vcpufreq", .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // Quick-mode smoke test of the doorbell benchmark against a real daemon (.build/<config>/vcpufreq).
        .testTarget(
            name: "VCPUFreqDoorbellBenchTests",
            dependencies: [
                "VCPUFreqDoorbellBench", "VCPUFreqBenchSupport", "VCPUFreqCore", "VCPUFreqConfig", "VCPUFreqKVM", "VCPUFreqVMM",
                "vcpufreq",
            ]
        ),
        // The workload benchmark: its pure parts by tables, a quick run on real KVM against a real daemon, --command.
        .testTarget(
            name: "VCPUFreqWorkloadBenchTests",
            dependencies: ["VCPUFreqWorkloadBench", "VCPUFreqBenchSupport", "VCPUFreqCore", "VCPUFreqKVM", "vcpufreq"]
        ),
        .testTarget(name: "VCPUFreqBenchSupportTests", dependencies: ["VCPUFreqBenchSupport", "VCPUFreqConfig", "VCPUFreqCore"]),
        .testTarget(
            name: "VCPUFreqBenchTests",
            dependencies: ["VCPUFreqTestSupport", "VCPUFreqBench", "VCPUFreqBenchSupport", "VCPUFreqConfig", "VCPUFreqCore", "vcpufreq"]
        ),
        // Integration tests against a real `vcpufreq serve` process (built
        // with the package: `swift build --build-tests`); the test process
        // plays the VMM with real threads and a mapped shared page.
        .testTarget(
            name: "VCPUFreqServerTests",
            dependencies: [
                "VCPUFreqTestSupport", "VCPUFreqClient", "VCPUFreqProtocol", "VCPUFreqLinux", "VCPUFreqCore", "VCPUFreqServer", "VCPUFreqVhostUser",
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "Atomics", package: "swift-atomics"),
            ]
        ),
        .testTarget(
            name: "VCPUFreqLinuxTests",
            dependencies: [
                "VCPUFreqLinux", "VCPUFreqCore",
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
    ]
)

// Fuzz targets (docs/fuzzing.md). Tests/Fuzz/Targets holds one body per
// input surface a guest, a VMM or a file reaches, and what the bodies share.
// The ordinary build compiles it as a test target that replays the committed
// inputs (Tests/Fuzz/regressions, Tests/Fuzz/corpus) through every body.
// scripts/fuzz sets VCPUFREQ_FUZZ_LIBFUZZER to libFuzzer's archive (the one
// without a main: fuzzMain hands a body to LLVMFuzzerRunDriver) and builds,
// in its own scratch path with AddressSanitizer and coverage, the same
// directory as a library and one libFuzzer executable per body; the ordinary
// build never sees those.
// Adding a target: its body (Tests/Fuzz/Targets/NameTarget.swift, listed in
// FuzzTargets.all), Tests/Fuzz/Main/NAME/main.swift (one line) and its name here.
let fuzzTargets = ["device", "shared-page", "protocol", "daemon", "topology", "trace", "status", "vhost-user", "virtqueue", "scmi"]
let fuzzDependencies: [Target.Dependency] = [
    "VCPUFreqCore", "VCPUFreqProtocol", "VCPUFreqConfig", "VCPUFreqLinux", "VCPUFreqServer", "VCPUFreqClient",
    "VCPUFreqVMM", "VCPUFreqBPF", "VCPUFreqVhostUser", "VCPUFreqSCMI", .product(name: "Logging", package: "swift-log"),
    .product(name: "SystemPackage", package: "swift-system"),
]
if let libFuzzer = Context.environment["VCPUFREQ_FUZZ_LIBFUZZER"] {
    package.targets += [
        .target(name: "CVCPUFreqFuzzDriver", path: "Tests/Fuzz/Driver"),
        .target(
            name: "VCPUFreqFuzzTargets", dependencies: fuzzDependencies + ["CVCPUFreqFuzzDriver"],
            path: "Tests/Fuzz/Targets", exclude: ["RegressionTests.swift"],
            swiftSettings: [.define("VCPUFREQ_FUZZ")]),
    ]
    package.targets += fuzzTargets.map { name in
        .executableTarget(
            name: "fuzz-\(name)", dependencies: ["VCPUFreqFuzzTargets"], path: "Tests/Fuzz/Main/\(name)",
            linkerSettings: [.unsafeFlags([
                "-Xlinker", "--whole-archive", "-Xlinker", libFuzzer, "-Xlinker", "--no-whole-archive", "-lstdc++",
            ])])
    }
    // The fuzz build compiles only what the fuzz executables reach (no CLI,
    // benchmarks or kernel lab): less than half the package, cold.
    let byName = Dictionary(uniqueKeysWithValues: package.targets.map { ($0.name, $0) })
    var needed = Set<String>()
    var pending = fuzzTargets.map { "fuzz-\($0)" }
    while let name = pending.popLast() {
        guard let target = byName[name], needed.insert(name).inserted else { continue }
        for dependency in target.dependencies {
            switch dependency {
            case .targetItem(let name, _), .byNameItem(let name, _): pending.append(name)
            default: break
            }
        }
        for case .plugin(let name, nil) in target.plugins ?? [] { pending.append(name) }
    }
    package.targets = package.targets.filter { needed.contains($0.name) }
    package.products = []
} else {
    package.targets.append(.testTarget(name: "VCPUFreqFuzzTargets", dependencies: fuzzDependencies, path: "Tests/Fuzz/Targets"))
}
