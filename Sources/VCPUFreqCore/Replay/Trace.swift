/// A text trace of guest accesses, one per line:
///
///     <vcpu> r <offset> [<width>]
///     <vcpu> w <offset> <value> [<width>]
///     wait <microseconds>
///
/// Numbers are decimal or 0x-hex; `#` starts a comment; width defaults to 4
/// bytes. `<offset>` is a device-space offset (`DeviceAddressMap`: upstream
/// windows at 0, util-hint windows at 0x400000, shared page at 0x800000,
/// doorbells at 0x880000). `wait` advances the replay clock (each access
/// also advances it by the replay's step).
public struct Trace: Equatable, Sendable {
    public enum Operation: Equatable, Sendable {
        case read(vcpu: Int, offset: UInt64, width: Int)
        case write(vcpu: Int, offset: UInt64, value: UInt64, width: Int)
        case wait(microseconds: UInt64)
    }

    public struct Line: Equatable, Sendable {
        /// 1-based line number in the trace text.
        public var number: Int
        public var operation: Operation
    }

    public var lines: [Line]

    /// Largest vCPU index a trace line may name. Out-of-range vCPUs of the VM
    /// are the device model's business (it answers them safely); this bound
    /// only keeps a typo like `99999999999` from being a valid line.
    public static let maximumVCPUIndex = 1 << 20
    /// Access widths a VMM can report for one MMIO access.
    public static let maximumWidth = 16

    /// Parses a whole trace; every bad line is reported with its number and
    /// the good lines are kept, so one typo does not hide the rest.
    public static func parse(_ text: String) -> (trace: Trace, diagnostics: [Diagnostic]) {
        var lines: [Line] = []
        var diagnostics: [Diagnostic] = []
        var number = 0
        // Split on Unicode scalars, not Characters: a Character is a grapheme
        // cluster, so "\r\n" is one, and so is "#" or " " followed by a
        // combining mark ("#\u{616}" was read as content, not a comment).
        // A line's trailing "\r" (CRLF endings) is a separator like a space.
        for rawLine in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let content = Substring(rawLine.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? rawLine)
            let words = content.unicodeScalars.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\r" }).map(Substring.init)
            if words.isEmpty { continue }
            switch parseLine(words) {
            case .success(let operation):
                lines.append(Line(number: number, operation: operation))
            case .failure(let problem):
                diagnostics.append(.error("", "\(problem.message): \"\(content.trimmingSpaces)\"", line: number))
            }
        }
        return (Trace(lines: lines), diagnostics)
    }

    struct LineProblem: Error {
        var message: String
    }

    private static func parseLine(_ words: [Substring]) -> Result<Operation, LineProblem> {
        if words[0] == "wait" {
            guard words.count == 2 else { return .failure(LineProblem(message: "expected `wait <microseconds>`")) }
            guard let microseconds = parseNumber(words[1]) else {
                return .failure(LineProblem(message: "\"\(words[1])\" is not a number of microseconds"))
            }
            return .success(.wait(microseconds: microseconds))
        }
        guard let vcpu = parseNumber(words[0]), vcpu <= UInt64(maximumVCPUIndex) else {
            return .failure(LineProblem(message: "\"\(words[0])\" is not a vCPU index (0...\(maximumVCPUIndex))"))
        }
        guard words.count >= 3 else { return .failure(LineProblem(message: "expected `<vcpu> r|w <offset> ...`")) }
        guard let offset = parseNumber(words[2]) else {
            return .failure(LineProblem(message: "\"\(words[2])\" is not an offset"))
        }
        func width(at index: Int) -> Result<Int, LineProblem> {
            guard index < words.count else { return .success(4) }
            guard let value = parseNumber(words[index]), value >= 1, value <= UInt64(maximumWidth) else {
                return .failure(LineProblem(message: "\"\(words[index])\" is not a width in bytes (1...\(maximumWidth))"))
            }
            return .success(Int(value))
        }
        switch words[1] {
        case "r":
            guard words.count <= 4 else { return .failure(LineProblem(message: "too many fields for a read")) }
            return width(at: 3).map { .read(vcpu: Int(vcpu), offset: offset, width: $0) }
        case "w":
            guard words.count >= 4 else { return .failure(LineProblem(message: "a write needs a value")) }
            guard words.count <= 5 else { return .failure(LineProblem(message: "too many fields for a write")) }
            guard let value = parseNumber(words[3]) else {
                return .failure(LineProblem(message: "\"\(words[3])\" is not a value"))
            }
            return width(at: 4).map { .write(vcpu: Int(vcpu), offset: offset, value: value, width: $0) }
        default:
            return .failure(LineProblem(message: "\"\(words[1])\" is neither r nor w"))
        }
    }

    /// Decimal or 0x-hex, up to 64 bits; nil on anything else (overflow included).
    static func parseNumber(_ word: Substring) -> UInt64? {
        if word.hasPrefix("0x") || word.hasPrefix("0X") {
            let digits = word.dropFirst(2)
            return digits.isEmpty ? nil : UInt64(digits, radix: 16)
        }
        return UInt64(word, radix: 10)
    }
}

extension Substring {
    var trimmingSpaces: Substring {
        var text = self
        while let first = text.first, first == " " || first == "\t" || first == "\r" { text = text.dropFirst() }
        while let last = text.last, last == " " || last == "\t" || last == "\r" { text = text.dropLast() }
        return text
    }
}
