// A build-tool plugin: compiles every bpf/*.bpf.c of the package with
// `clang -target bpf -O2 -g` and embeds the objects into the target as one
// generated Swift file (base64 in one string literal per object: huge array
// literals type-check slowly). `swift build` does it all; there is no manual
// step and no object file in git.
//
// One build command does both steps (vcpufreq-bpf-embed runs clang): an
// object file declared as a command output would be copied into a resource
// bundle, which would drag Foundation into VCPUFreqBPF.
import Foundation
import PackagePlugin

@main
struct BPFObjectPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: Target) async throws -> [Command] {
        let bpfDirectory = context.package.directoryURL.appending(path: "bpf")
        let entries = try FileManager.default.contentsOfDirectory(
            at: bpfDirectory, includingPropertiesForKeys: nil
        ).sorted { $0.lastPathComponent < $1.lastPathComponent }
        let sources = entries.filter { $0.lastPathComponent.hasSuffix(".bpf.c") }
        // Every header can change every object: all are inputs, and so is the
        // guest ABI header (vcpufreq_slot.h reads the shared page with it).
        let abiDirectory = context.package.directoryURL.appending(path: "Sources/CVCPUFreqABI/include")
        let headers = entries.filter { $0.pathExtension == "h" } + [abiDirectory.appending(path: "vcpufreq_abi.h")]
        guard !sources.isEmpty else { return [] }

        let clang = try context.tool(named: "clang").url
        let embed = try context.tool(named: "vcpufreq-bpf-embed").url
        let work = context.pluginWorkDirectoryURL
        let generated = work.appending(path: "EmbeddedBPFObjects.swift")
        return [
            .buildCommand(
                displayName: "Compiling and embedding BPF programs of bpf/ into \(target.name)",
                executable: embed,
                arguments: [
                    "--clang", clang.path(percentEncoded: false),
                    "--include", bpfDirectory.path(percentEncoded: false),
                    "--abi-include", abiDirectory.path(percentEncoded: false),
                    "--work", work.path(percentEncoded: false),
                    "--output", generated.path(percentEncoded: false),
                ] + sources.map { $0.path(percentEncoded: false) },
                inputFiles: sources + headers,
                outputFiles: [generated]
            )
        ]
    }
}
