import ArgumentParser
import Glibc
import VCPUFreqConfig
import VCPUFreqCore

/// The topology file and VM profile a rendering subcommand works on.
struct TopologyFileOptions: ParsableArguments {
    @Argument(help: "The topology file (TOML).")
    var file: String

    @Option(help: "The VM profile to use (default: the first [[vm]]).")
    var vm: String?

    /// Loads and checks the file. Warnings go to stderr; errors are printed
    /// one per line and end the command with exit status 1.
    func load() throws -> Topology {
        do {
            let (topology, warnings) = try TopologyFile.load(path: file)
            for warning in warnings { printError(TopologyFile.format(warning, file: file)) }
            if let vm, topology.profile(named: vm) == nil {
                let known = topology.vms.map(\.name).joined(separator: ", ")
                throw CLIError("\(file): no VM profile named \"\(vm)\" (profiles: \(known))")
            }
            return topology
        } catch let error as TopologyFileError {
            if case .unreadable = error { throw CLIError(error.description) }
            printError(error.description)
            throw ExitCode.failure
        }
    }
}

/// A message for the operator; ArgumentParser prints it as `Error: …` and exits 1.
struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// One line on stderr (file descriptor 2: the C `stderr` global is not concurrency-safe in Swift 6).
func printError(_ line: String) {
    var bytes = Array((line + "\n").utf8)
    var offset = 0
    while offset < bytes.count {
        let written = bytes[offset...].withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
        if written < 0 && errno == EINTR { continue }
        if written <= 0 { return }
        offset += written
    }
}

/// Writes `text` to `path`, or stdout when `path` is nil or "-".
func writeOutput(_ text: String, to path: String?) throws {
    guard let path, path != "-" else {
        print(text, terminator: "")
        return
    }
    guard let file = fopen(path, "w") else {
        throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))")
    }
    let written = fputs(text, file)
    let closed = fclose(file)
    if written < 0 || closed != 0 {
        throw CLIError("cannot write \(path): \(String(cString: strerror(errno)))")
    }
}
