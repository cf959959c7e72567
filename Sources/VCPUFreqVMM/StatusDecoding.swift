import Foundation
import VCPUFreqProtocol

/// Decodes the daemon's STATUS JSON. The daemon encodes with
/// `convertToSnakeCase`, which turns `peerPID` into `peer_pid`; the
/// client's `convertFromSnakeCase` turns that into `peerPid`, which is not
/// `peerPID`, so `VCPUFreqClient.status()` fails on any document with a VM.
/// This decoder maps the snake-case words back and spells the acronyms
/// `PID`/`UID` the way `StatusDocument` does.
enum StatusDecoding {
    /// Words written in capitals in `StatusDocument`'s property names.
    static let acronyms: Set<String> = ["pid", "uid"]

    /// Tries the acronym-aware mapping first, then the plain strategies (so
    /// a daemon that spells its keys differently one day still decodes);
    /// throws the first attempt's error when none fits.
    static func decode(_ json: [UInt8]) throws -> StatusDocument {
        let data = Data(json)
        let acronymAware = JSONDecoder()
        acronymAware.keyDecodingStrategy = .custom { path in AnyKey(camelCase(path.last?.stringValue ?? "")) }
        let snakeCase = JSONDecoder()
        snakeCase.keyDecodingStrategy = .convertFromSnakeCase
        let firstError: Error
        do { return try acronymAware.decode(StatusDocument.self, from: data) } catch { firstError = error }
        for decoder in [snakeCase, JSONDecoder()] {
            if let document = try? decoder.decode(StatusDocument.self, from: data) { return document }
        }
        throw firstError
    }

    /// `peer_pid` → `peerPID`, `current_performance_k_hz` → `currentPerformanceKHz`.
    static func camelCase(_ key: String) -> String {
        let words = key.split(separator: "_", omittingEmptySubsequences: true).map(String.init)
        guard let first = words.first else { return key }
        return first + words.dropFirst().map { word in
            acronyms.contains(word) ? word.uppercased() : word.prefix(1).uppercased() + word.dropFirst()
        }.joined()
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int?
        init(_ string: String) { stringValue = string }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) {
            stringValue = "\(intValue)"
            self.intValue = intValue
        }
    }
}
