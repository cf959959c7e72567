import Foundation
import VCPUFreqLinux
import VCPUFreqBenchSupport

/// One call stack the daemon allocated from inside a measurement window, and
/// how often it was seen among the kept stacks.
public struct AllocationSite: Codable, Equatable, Sendable {
    public var count: Int
    /// Innermost first, from the first frame outside the counter library:
    /// demangled function names with file:line where debug info has them.
    public var frames: [String]
}

/// Turns the return addresses the counter library recorded in the daemon
/// into function names: /proc/<pid>/maps says which file and offset each
/// address is in, llvm-symbolizer (the Swift toolchain's, if on PATH) names
/// the function and line, the Swift runtime demangles it.
struct AllocationSiteResolver {
    struct Mapping {
        var start: UInt64
        var end: UInt64
        var path: String
        /// Load address of the file (its offset-0 mapping): address - base is
        /// the ELF virtual address for PIE executables and shared libraries.
        var base: UInt64
    }

    let mappings: [Mapping]
    /// Frames shown per site.
    static let framesShown = 10

    /// Reads the daemon's mappings (while it runs); nil if it is gone.
    init?(processID: Int32) {
        guard let text = ProcText.read("/proc/\(processID)/maps") else { return nil }
        mappings = Self.parse(maps: text)
    }

    init(mappings: [Mapping]) { self.mappings = mappings }

    /// Parses /proc/<pid>/maps lines `start-end perms offset dev inode path`.
    static func parse(maps text: String) -> [Mapping] {
        var result: [Mapping] = []
        var bases: [String: UInt64] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[5].hasPrefix("/") else { continue }
            let range = fields[0].split(separator: "-")
            guard range.count == 2, let start = UInt64(range[0], radix: 16), let end = UInt64(range[1], radix: 16),
                let offset = UInt64(fields[2], radix: 16)
            else { continue }
            let path = fields[5...].joined(separator: " ")
            if bases[path] == nil, start >= offset { bases[path] = start - offset }
            result.append(Mapping(start: start, end: end, path: path, base: bases[path] ?? start))
        }
        return result
    }

    func locate(_ address: UInt64) -> (path: String, offset: UInt64)? {
        guard let mapping = mappings.first(where: { $0.start <= address && address < $0.end }) else { return nil }
        return (mapping.path, address - mapping.base)
    }

    /// Groups identical stacks, most frequent first, and names their frames.
    func sites(from stacks: [[UInt64]], skippingLibrary library: String?) -> [AllocationSite] {
        var counts: [[UInt64]: Int] = [:]
        for stack in stacks {
            // The innermost frames are the counter library itself.
            let trimmed = Array(stack.drop { address in
                guard let library, let located = locate(address) else { return false }
                return located.path == library || (located.path as NSString).resolvingSymlinksInPath == library
            }.prefix(Self.framesShown))
            counts[trimmed, default: 0] += 1
        }
        let names = symbolize(Set(counts.keys.flatMap { $0 }))
        return counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key.lexicographicallyPrecedes($1.key) }
            .map { stack, count in
                AllocationSite(count: count, frames: stack.map { names[$0] ?? String(format: "0x%llx", $0) })
            }
    }

    /// One llvm-symbolizer run per file for all of its addresses.
    private func symbolize(_ addresses: Set<UInt64>) -> [UInt64: String] {
        var byFile: [String: [(address: UInt64, offset: UInt64)]] = [:]
        var names: [UInt64: String] = [:]
        for address in addresses {
            guard let located = locate(address) else { continue }
            byFile[located.path, default: []].append((address, located.offset))
            names[address] = "\((located.path as NSString).lastPathComponent)+0x\(String(located.offset, radix: 16))"
        }
        guard let symbolizer = Self.findSymbolizer() else { return names }
        for (path, entries) in byFile {
            // A return address points after its call: look up the call itself.
            let arguments = ["--obj=\(path)", "--functions=linkage", "--no-inlines"]
                + entries.map { "0x" + String($0.offset &- 1, radix: 16) }
            guard let output = Self.run(symbolizer, arguments) else { continue }
            let blocks = output.components(separatedBy: "\n\n").filter { !$0.isEmpty }
            for (entry, block) in zip(entries, blocks) {
                let lines = block.split(separator: "\n")
                guard let function = lines.first, function != "??" else { continue }
                var name = Self.callSite(Self.demangle(String(function)))
                // file:line:column, when the debug info has a real line.
                if lines.count > 1, !lines[1].hasPrefix("??"), !lines[1].hasSuffix(":0:0"),
                    !lines[1].hasPrefix("<compiler-generated>")
                {
                    name += " (\((String(lines[1]) as NSString).lastPathComponent))"
                }
                names[entry.address] = name
            }
        }
        return names
    }

    static func findSymbolizer() -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for directory in path.split(separator: ":") {
            let candidate = "\(directory)/llvm-symbolizer"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }

    /// Runs the tool to its end; its standard output (stderr dropped).
    /// ChildProcess, not Foundation's `Process`: with the loopback
    /// interface down, `Process.waitUntilExit` never returns.
    static func run(_ executable: String, _ arguments: [String]) -> String? {
        let output = NSTemporaryDirectory() + "vcpufreq-symbolizer-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).txt"
        defer { unlink(output) }
        guard let child = try? ChildProcess([executable] + arguments, outputPath: output, errorsToOutput: false) else {
            return nil
        }
        guard child.wait(timeout: .seconds(120)) != nil else {
            child.stop(grace: .seconds(1))
            return nil
        }
        return try? String(contentsOfFile: output, encoding: .utf8)
    }

    /// Swift symbols through the runtime's demangler; others unchanged.
    static func demangle(_ symbol: String) -> String {
        guard symbol.hasPrefix("$s") || symbol.hasPrefix("_$s") else { return symbol }
        return symbol.withCString { pointer in
            guard let demangled = _swift_demangle(pointer, strlen(pointer), nil, nil, 0) else { return symbol }
            defer { free(demangled) }
            return String(cString: demangled)
        }
    }

    /// Modules whose prefix adds nothing to a call site's name.
    static let quietModules = [
        "Swift.", "Foundation.", "VCPUFreqServer.", "VCPUFreqCore.", "VCPUFreqLinux.", "VCPUFreqProtocol.",
        "VCPUFreqClient.", "SystemPackage.",
    ]

    /// A demangled name as a call site: `VMSession.submit(_:now:)` for
    /// `function signature specialization <…> of VCPUFreqServer.VMSession.(submit
    /// in _A77…)(_: VCPUFreqCore.GuestRequest, now: Swift.UInt64) -> ()`.
    static func callSite(_ demangled: String) -> String {
        var name = demangled
        // "merged generic specialization <…> of ", "function signature specialization <…> of ", …
        while let of = name.range(of: " of "), name[..<of.lowerBound].contains("specialization <") {
            name = String(name[of.upperBound...])
        }
        // "closure #1 (Swift.Int) -> () in X.f(y: Swift.Int) -> ()" → "closure #1 in X.f(y:)"
        if let hash = name.range(of: "closure #"), let number = name[hash.upperBound...].split(separator: " ").first,
            let inRange = name.range(of: " in ", range: hash.upperBound..<name.endIndex)
        {
            return name[..<hash.upperBound] + number + " in " + callSite(String(name[inRange.upperBound...]))
        }
        // Private discriminators: "(submit in _A7773DD6…)" → "submit".
        while let open = name.range(of: "("), let inRange = name.range(of: " in _", range: open.upperBound..<name.endIndex),
            let close = name.range(of: ")", range: inRange.upperBound..<name.endIndex),
            !name[open.upperBound..<inRange.lowerBound].contains("(")
        {
            name.replaceSubrange(open.lowerBound..<close.upperBound, with: name[open.upperBound..<inRange.lowerBound])
        }
        for module in quietModules { name = name.replacingOccurrences(of: module, with: "") }
        // Parameters as labels only, and no result type.
        guard let open = name.firstIndex(of: "(") else { return name }
        var depth = 0
        var labels: [String] = []
        var current = ""
        var end = name.endIndex
        for index in name[open...].indices {
            let character = name[index]
            switch character {
            case "(", "<", "[":
                depth += 1
                if depth > 1 { current.append(character) }
            case ")", ">", "]":
                depth -= 1
                if depth == 0 {
                    end = index
                    if !current.isEmpty { labels.append(current) }
                    break
                }
                current.append(character)
            case "," where depth == 1:
                labels.append(current)
                current = ""
            default:
                current.append(character)
            }
            if end != name.endIndex { break }
        }
        guard end != name.endIndex else { return name }
        let parameters = labels.map { label -> String in
            let trimmed = label.trimmingCharacters(in: .whitespaces)
            guard let colon = trimmed.firstIndex(of: ":") else { return "_:" }
            return String(trimmed[..<colon]) + ":"
        }
        return String(name[..<open]) + "(" + parameters.joined() + ")"
    }
}

/// The Swift runtime's demangler (exported by libswiftCore): returns a
/// malloc'ed C string, or nil for a name that is not a Swift symbol.
@_silgen_name("swift_demangle")
private func _swift_demangle(
    _ mangledName: UnsafePointer<CChar>?, _ mangledNameLength: Int, _ outputBuffer: UnsafeMutablePointer<CChar>?,
    _ outputBufferSize: UnsafeMutablePointer<Int>?, _ flags: UInt32
) -> UnsafeMutablePointer<CChar>?
