import Foundation
import VCPUFreqTestSupport

/// A flattened device tree (dtb) read back into nodes, for checking what
/// `dtc` compiled from our source. Independent of the renderer: it knows
/// only the FDT format (devicetree specification, chapter 5).
struct DeviceTreeBlob {
    struct Node {
        var name: String
        var properties: [String: [UInt8]] = [:]
        var children: [Node] = []

        func child(_ name: String) -> Node? { children.first { $0.name == name } }

        /// Property as big-endian 32-bit cells.
        func cells(_ property: String) -> [UInt32]? {
            guard let bytes = properties[property], bytes.count % 4 == 0 else { return nil }
            return stride(from: 0, to: bytes.count, by: 4).map { DeviceTreeBlob.u32(bytes, $0) }
        }

        /// Property as NUL-separated strings.
        func strings(_ property: String) -> [String]? {
            guard let bytes = properties[property], bytes.last == 0 else { return nil }
            return bytes.dropLast().split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        }
    }

    enum ParseError: Error { case badMagic, truncated, badToken(UInt32) }

    let root: Node

    init(_ bytes: [UInt8]) throws {
        guard bytes.count >= 40 else { throw ParseError.truncated }
        guard Self.u32(bytes, 0) == 0xd00d_feed else { throw ParseError.badMagic }
        let structOffset = Int(Self.u32(bytes, 8)), stringsOffset = Int(Self.u32(bytes, 12))
        var position = structOffset
        func nextU32() throws -> UInt32 {
            guard position + 4 <= bytes.count else { throw ParseError.truncated }
            defer { position += 4 }
            return Self.u32(bytes, position)
        }
        func cString(at offset: Int) throws -> String {
            guard let end = bytes[offset...].firstIndex(of: 0) else { throw ParseError.truncated }
            return String(decoding: bytes[offset..<end], as: UTF8.self)
        }
        var stack: [Node] = []
        var finished: Node?
        loop: while true {
            let token = try nextU32()
            switch token {
            case 1:  // FDT_BEGIN_NODE
                let name = try cString(at: position)
                position += (name.utf8.count + 1 + 3) & ~3
                stack.append(Node(name: name))
            case 2:  // FDT_END_NODE
                guard let node = stack.popLast() else { throw ParseError.badToken(token) }
                if stack.isEmpty { finished = node } else { stack[stack.count - 1].children.append(node) }
            case 3:  // FDT_PROP
                let length = Int(try nextU32()), nameOffset = Int(try nextU32())
                guard position + length <= bytes.count, !stack.isEmpty else { throw ParseError.truncated }
                let name = try cString(at: stringsOffset + nameOffset)
                stack[stack.count - 1].properties[name] = Array(bytes[position..<(position + length)])
                position += (length + 3) & ~3
            case 4: continue  // FDT_NOP
            case 9: break loop  // FDT_END
            default: throw ParseError.badToken(token)
            }
        }
        guard let finished else { throw ParseError.truncated }
        root = finished
    }

    static func u32(_ bytes: [UInt8], _ offset: Int) -> UInt32 {
        bytes[offset..<(offset + 4)].reduce(0) { $0 << 8 | UInt32($1) }
    }
}

/// Runs dtc (Debian package device-tree-compiler).
enum DTC {
    struct Output {
        var status: Int32
        var stdout: [UInt8]
        var stderr: String
    }

    static let path: String? = ["/usr/bin/dtc", "/usr/local/bin/dtc"].first { FileManager.default.isExecutableFile(atPath: $0) }

    /// Compiles source to a blob; stderr holds dtc's warnings.
    static func compile(_ source: String) throws -> Output {
        guard let path else { throw CocoaError(.fileNoSuchFile, userInfo: [NSLocalizedDescriptionKey: "dtc not found: apt-get install device-tree-compiler"]) }
        let input = FileManager.default.temporaryDirectory.appendingPathComponent("vcpufreq-\(UUID().uuidString).dts")
        try source.write(to: input, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: input) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-I", "dts", "-O", "dtb", input.path]
        let run = try ProgramOutput.of(process)
        return Output(status: run.status, stdout: Array(run.stdout), stderr: run.standardError)
    }
}
