import VCPUFreqCore

/// Finds the 1-based line of a TOML key path (`host.cluster[1].frequencies_khz[3]`)
/// in the source text of a topology file.
///
/// TOMLKit hands back values without positions, so diagnostics would have no
/// line. This is not a second TOML parser: its lines are used only for text
/// TOMLKit has accepted (before TOMLKit it only looks for the two shapes
/// TOMLKit aborts on, `abortsTOMLKit`), and it recognises just enough to
/// attribute lines —
/// table headers (`[host]`, `[[host.cluster]]` occurrence n, `[vm.policy]`
/// inside the current `[[vm]]`), `key =` lines (dotted and quoted keys
/// included), and the elements of arrays and keys of inline tables, which
/// may span lines. Every branch advances, so odd input ends the scan instead
/// of looping.
struct LineLocator {
    private var lineOfPath: [String: Int] = [:]
    /// The first construct TOMLKit's toml++ (3.4.0) asserts on instead of
    /// reporting an error — which aborts the process — so
    /// `TopologyFile.decode` reports it itself, with its line and column,
    /// and never hands such text to TOMLKit:
    /// - a table header whose key starts with a character no key can start
    ///   with (`[[;a]]`, `[[[1]]]`, `[=`; fixed upstream:
    ///   marzer/tomlplusplus#301);
    /// - in an array, where a value, `,` or `]` belongs (after skipping
    ///   blanks, line breaks and comments), a `}` or a line break toml++'s
    ///   array loop does not skip (U+0085, U+2028, U+2029): `parse_array`
    ///   calls `parse_value` on it, which asserts
    ///   `!is_value_terminator(*cp)` (`a = [}`, `a = [1, }]`).
    /// Neither is valid TOML, so no valid file is refused. And one valid
    /// construct TOMLKit silently gets wrong: a NUL escape (`\u0000`,
    /// `\U00000000`) in a basic string, where TOMLKit's strings end, so
    /// `"a\u0000b"` would read as `"a"` (the topology fuzz target found it).
    private(set) var abortsTOMLKit: Diagnostic?

    init(source: String) {
        var scanner = Scanner(bytes: Array(source.utf8))
        scanner.run()
        lineOfPath = scanner.lineOfPath
        abortsTOMLKit = scanner.abortsTOMLKit
    }

    /// The line of `keyPath`, or of its nearest enclosing key or table that
    /// the file spells out (a missing key is reported at its table's header).
    func line(of keyPath: String) -> Int? {
        var path = Substring(keyPath)
        while !path.isEmpty {
            if let line = lineOfPath[String(path)] { return line }
            guard let cut = path.lastIndex(where: { $0 == "." || $0 == "[" }) else { return nil }
            path = path[..<cut]
        }
        return nil
    }

    /// Every key path the scan recorded (for tests).
    var knownPaths: [String: Int] { lineOfPath }
}

/// A byte-level scan of TOML text. `line` is 1-based and advances on every `\n`.
private struct Scanner {
    let bytes: [UInt8]
    var position = 0
    var line = 1
    var lineOfPath: [String: Int] = [:]
    var abortsTOMLKit: Diagnostic?
    /// Current table (`host`, `host.cluster[2]`, `vm[0].policy`); "" = root.
    var table = ""
    /// Next index of each array of tables, keyed by its resolved path.
    var arrayCounts: [String: Int] = [:]
    /// Index of the element each array of tables is currently in.
    var currentElement: [String: Int] = [:]

    /// Where the text starts: after a UTF-8 byte order mark, which toml++
    /// skips (the topology target found `\u{FEFF}[[;a]]` aborting TOMLKit,
    /// as the scan took the mark for the start of a key and missed the header).
    let textStart: Int

    init(bytes: [UInt8]) {
        self.bytes = bytes
        textStart = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        position = textStart
    }

    private static let newline = UInt8(ascii: "\n")
    private static let hash = UInt8(ascii: "#")

    var atEnd: Bool { position >= bytes.count }
    var current: UInt8 { bytes[position] }

    mutating func advance() {
        if bytes[position] == Self.newline { line += 1 }
        position += 1
    }

    mutating func record(_ path: String) {
        if lineOfPath[path] == nil { lineOfPath[path] = line }
    }

    /// Keeps the first construct TOMLKit would abort on, at byte `offset`
    /// of the current line (the column counts code points, as editors do).
    mutating func refuse(at offset: Int, _ message: String) {
        guard abortsTOMLKit == nil else { return }
        let lineStart = bytes[..<offset].lastIndex(of: Self.newline).map { $0 + 1 } ?? textStart
        let column = bytes[lineStart..<offset].count { $0 & 0xC0 != 0x80 } + 1
        abortsTOMLKit = Diagnostic(.error, "", message, line: line, column: column)
    }

    mutating func run() {
        while !atEnd {
            skipBlank()
            if atEnd { break }
            switch current {
            case Self.newline: advance()
            case Self.hash: skipToLineEnd()
            case UInt8(ascii: "["): header()
            default: keyValue(in: table)
            }
        }
    }

    /// Spaces and tabs (not newlines).
    mutating func skipBlank() {
        while !atEnd && (current == UInt8(ascii: " ") || current == UInt8(ascii: "\t") || current == UInt8(ascii: "\r")) {
            position += 1
        }
    }

    /// Whitespace, newlines and comments (inside arrays and between values).
    mutating func skipSpaceAndComments() {
        while !atEnd {
            switch current {
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), Self.newline: advance()
            case Self.hash: skipToLineEnd()
            default: return
            }
        }
    }

    mutating func skipToLineEnd() {
        while !atEnd && current != Self.newline { position += 1 }
    }

    /// `[a.b]` or `[[a.b]]`.
    mutating func header() {
        position += 1
        var isArray = false
        if !atEnd && current == UInt8(ascii: "[") {
            isArray = true
            position += 1
        }
        var keyStart: Int? = position
        while let start = keyStart, start < bytes.count, bytes[start] == UInt8(ascii: " ") || bytes[start] == UInt8(ascii: "\t") {
            keyStart = start + 1
        }
        if let start = keyStart, start >= bytes.count { keyStart = nil }
        let components = keyComponents(until: UInt8(ascii: "]"))
        if !atEnd { position += 1 }
        if isArray && !atEnd && current == UInt8(ascii: "]") { position += 1 }
        if let start = keyStart, !Self.canStartHeaderKey(bytes[start]) {
            let shown = bytes[start] >= 0x21 && bytes[start] < 0x7F ? "'\(Character(UnicodeScalar(bytes[start])))'" : "byte 0x" + String(bytes[start], radix: 16)
            refuse(at: start, "table header: expected a key (bare or quoted), found \(shown)")
        }
        var resolved = ""
        for (index, component) in components.enumerated() {
            resolved += index == 0 ? component : ".\(component)"
            if isArray && index == components.count - 1 {
                // The array itself (`[[r]]` spells out `r`, which an
                // unknown key is reported at) is at its first element.
                record(resolved)
                let element = arrayCounts[resolved, default: 0]
                arrayCounts[resolved] = element + 1
                currentElement[resolved] = element
                resolved += "[\(element)]"
            } else if let element = currentElement[resolved] {
                resolved += "[\(element)]"
            }
            // `[vm.policy]` also spells out `vm` (a table it implies),
            // which a problem with `vm` itself is reported at.
            record(resolved)
        }
        table = resolved
        record(resolved)
        skipToLineEnd()
    }

    /// What may follow `[` or `[[` (and blanks) in a header toml++ reports
    /// on rather than asserts: a bare key character, a quote, or the `]`
    /// of an empty header (its own error).
    static func canStartHeaderKey(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "\""), UInt8(ascii: "'"), UInt8(ascii: "]"):
            return true
        default:
            return false
        }
    }

    /// What toml++ 3.4.0's `parse_array` hands to `parse_value` although
    /// `is_value_terminator` holds for it (it skips spaces, tabs, `\n`,
    /// `\r\n` and comments, refuses `\v`, `\f`, a lone `\r` and other
    /// horizontal spaces, and handles `,` and `]` itself): `}` and the
    /// non-ASCII line breaks. Returns how to show it, or nil.
    static func unskippedValueTerminator(_ rest: ArraySlice<UInt8>) -> String? {
        if rest.first == UInt8(ascii: "}") { return "'}'" }
        if rest.starts(with: [0xC2, 0x85]) { return "U+0085 (next line)" }
        if rest.starts(with: [0xE2, 0x80, 0xA8]) { return "U+2028 (line separator)" }
        if rest.starts(with: [0xE2, 0x80, 0xA9]) { return "U+2029 (paragraph separator)" }
        return nil
    }

    /// Reads a (possibly dotted, possibly quoted) key up to `terminator`,
    /// leaving the position on the terminator.
    mutating func keyComponents(until terminator: UInt8) -> [String] {
        var components: [String] = []
        var currentKey: [UInt8] = []
        while !atEnd && current != terminator && current != Self.newline {
            let byte = current
            if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") {
                position += 1
                while !atEnd && current != byte && current != Self.newline {
                    if byte == UInt8(ascii: "\"") && current == UInt8(ascii: "\\") { position += 1 }
                    if !atEnd && current != Self.newline {
                        currentKey.append(current)
                        position += 1
                    }
                }
                if !atEnd && current == byte { position += 1 }
            } else if byte == UInt8(ascii: ".") {
                components.append(String(decoding: currentKey, as: UTF8.self))
                currentKey = []
                position += 1
            } else {
                if byte != UInt8(ascii: " ") && byte != UInt8(ascii: "\t") { currentKey.append(byte) }
                position += 1
            }
        }
        components.append(String(decoding: currentKey, as: UTF8.self))
        return components
    }

    mutating func keyValue(in base: String) {
        let components = keyComponents(until: UInt8(ascii: "="))
        guard !atEnd, current == UInt8(ascii: "=") else {
            skipToLineEnd()
            return
        }
        position += 1
        var path = base
        for component in components {
            path += path.isEmpty ? component : ".\(component)"
            record(path)
        }
        skipBlank()
        value(path: path)
        skipToLineEnd()
    }

    /// Skips one value, recording the lines of array elements and inline-table keys.
    mutating func value(path: String) {
        guard !atEnd else { return }
        switch current {
        case UInt8(ascii: "["):
            position += 1
            var index = 0
            while true {
                skipSpaceAndComments()
                if atEnd { return }
                if let shown = Self.unskippedValueTerminator(bytes[position...]) {
                    refuse(at: position, "array: expected a value, ',' or ']', found \(shown)")
                }
                if current == UInt8(ascii: "]") { position += 1; return }
                if current == UInt8(ascii: ",") { position += 1; continue }
                let element = "\(path)[\(index)]"
                record(element)
                let before = position
                value(path: element)
                if position == before { position += 1 }
                index += 1
            }
        case UInt8(ascii: "{"):
            position += 1
            while true {
                skipSpaceAndComments()
                if atEnd { return }
                if current == UInt8(ascii: "}") { position += 1; return }
                if current == UInt8(ascii: ",") { position += 1; continue }
                let before = position
                let components = keyComponents(until: UInt8(ascii: "="))
                if !atEnd && current == UInt8(ascii: "=") {
                    position += 1
                    let key = components.reduce(path) { "\($0).\($1)" }
                    record(key)
                    skipBlank()
                    value(path: key)
                }
                if position == before { position += 1 }
            }
        case UInt8(ascii: "\""), UInt8(ascii: "'"):
            string()
        default:
            while !atEnd {
                switch current {
                case UInt8(ascii: ","), UInt8(ascii: "]"), UInt8(ascii: "}"), Self.newline, Self.hash: return
                default: position += 1
                }
            }
        }
    }

    /// `u0000` or `U00000000` (what follows a backslash in a basic string).
    static func isNULEscape(_ rest: ArraySlice<UInt8>) -> Bool {
        let digits = rest.first == UInt8(ascii: "u") ? 4 : rest.first == UInt8(ascii: "U") ? 8 : 0
        return digits > 0 && rest.count > digits && rest.dropFirst().prefix(digits).allSatisfy { $0 == UInt8(ascii: "0") }
    }

    /// A basic, literal or multi-line string; the position ends after its closing quote.
    mutating func string() {
        let quote = current
        let isTriple = position + 2 < bytes.count && bytes[position + 1] == quote && bytes[position + 2] == quote
        position += isTriple ? 3 : 1
        while !atEnd {
            if quote == UInt8(ascii: "\"") && current == UInt8(ascii: "\\") {
                let escape = position
                position += 1
                if !atEnd, Self.isNULEscape(bytes[position...]) {
                    refuse(at: escape, "a NUL character (\\u0000) in a string: TOMLKit would end the string there and lose the rest")
                }
                if !atEnd { advance() }
                continue
            }
            if current == quote {
                if !isTriple { position += 1; return }
                if position + 2 < bytes.count && bytes[position + 1] == quote && bytes[position + 2] == quote {
                    position += 3
                    // A triple-quoted string may end with up to two more quotes.
                    while !atEnd && current == quote { position += 1 }
                    return
                }
            }
            if !isTriple && current == Self.newline { return }
            advance()
        }
    }
}
