import TOMLKit
import VCPUFreqCore

/// Typed reads of TOML values that record a diagnostic, instead of failing,
/// for every value of the wrong type, every unknown key and every missing
/// required key, so one run reports every problem of a file.
struct TOMLFields {
    private(set) var diagnostics: [Diagnostic] = []
    /// Key paths that already have a decoding error; `Topology.check()`
    /// findings at or below them are consequences and are dropped.
    private(set) var failedPaths: [String] = []

    mutating func error(_ path: String, _ message: String) {
        diagnostics.append(.error(path, message))
        failedPaths.append(path)
    }

    mutating func warning(_ path: String, _ message: String) {
        diagnostics.append(.warning(path, message))
    }

    /// Reports every key of `table` that is not in `allowed`, with the
    /// closest allowed key when it looks like a typo.
    mutating func rejectUnknownKeys(_ table: TOMLTable, path: String, allowed: [String]) {
        for key in table.keys.sorted() where !allowed.contains(key) {
            let keyPath = path.isEmpty ? key : "\(path).\(key)"
            var message = "unknown key \"\(key)\""
            if let suggestion = Self.closest(to: key, in: allowed) { message += "; did you mean \"\(suggestion)\"?" }
            else { message += " (known keys: \(allowed.joined(separator: ", ")))" }
            error(keyPath, message)
        }
    }

    // MARK: Scalars

    mutating func value(_ table: TOMLTable, _ key: String, path: String, required: Bool) -> TOMLValueConvertible? {
        if let value = table[key] { return value }
        if required { error("\(path).\(key)", "missing key \"\(key)\"") }
        return nil
    }

    mutating func typeMismatch(_ path: String, expected: String, found value: TOMLValueConvertible) {
        error(path, "expected \(expected), found \(Self.describe(value))")
    }

    mutating func int(_ value: TOMLValueConvertible, path: String) -> Int? {
        if let int = value.int { return int }
        typeMismatch(path, expected: "an integer", found: value)
        return nil
    }

    mutating func int(_ table: TOMLTable, _ key: String, path: String, required: Bool = false) -> Int? {
        value(table, key, path: path, required: required).flatMap { int($0, path: "\(path).\(key)") }
    }

    mutating func string(_ value: TOMLValueConvertible, path: String) -> String? {
        if let string = value.string { return string }
        typeMismatch(path, expected: "a string", found: value)
        return nil
    }

    mutating func string(_ table: TOMLTable, _ key: String, path: String, required: Bool = false) -> String? {
        value(table, key, path: path, required: required).flatMap { string($0, path: "\(path).\(key)") }
    }

    mutating func bool(_ table: TOMLTable, _ key: String, path: String) -> Bool? {
        guard let value = table[key] else { return nil }
        if let bool = value.bool { return bool }
        typeMismatch("\(path).\(key)", expected: "true or false", found: value)
        return nil
    }

    /// A string naming one case of `E`; an unknown name lists the choices.
    mutating func choice<E: RawRepresentable & CaseIterable>(
        _ table: TOMLTable, _ key: String, path: String, as type: E.Type
    ) -> E? where E.RawValue == String {
        guard let name = string(table, key, path: path) else { return nil }
        if let value = E(rawValue: name) { return value }
        let choices = E.allCases.map(\.rawValue).joined(separator: "|")
        error("\(path).\(key)", "\"\(name)\" is not one of \(choices)")
        return nil
    }

    // MARK: Arrays

    mutating func array(_ value: TOMLValueConvertible, path: String) -> TOMLArray? {
        if let array = value.array { return array }
        typeMismatch(path, expected: "an array", found: value)
        return nil
    }

    /// An array whose elements each decode with `element`; elements that fail
    /// are reported and left out (the array then has fewer entries).
    mutating func array<T>(
        _ table: TOMLTable, _ key: String, path: String, required: Bool = false,
        element: (inout TOMLFields, TOMLValueConvertible, String) -> T?
    ) -> [T]? {
        let keyPath = "\(path).\(key)"
        guard let raw = value(table, key, path: path, required: required), let array = array(raw, path: keyPath) else {
            return nil
        }
        var result: [T] = []
        for index in 0..<array.count {
            if let decoded = element(&self, array[index], "\(keyPath)[\(index)]") { result.append(decoded) }
        }
        return result
    }

    /// The tables of an array of tables (`[[host.cluster]]`).
    mutating func tables(_ table: TOMLTable, _ key: String, path: String) -> [TOMLTable]? {
        let keyPath = path.isEmpty ? key : "\(path).\(key)"
        guard let raw = table[key] else { return nil }
        guard let array = raw.array else {
            typeMismatch(keyPath, expected: "an array of tables ([[\(keyPath)]])", found: raw)
            return nil
        }
        var result: [TOMLTable] = []
        for index in 0..<array.count {
            if let element = array[index].table {
                result.append(element)
            } else {
                typeMismatch("\(keyPath)[\(index)]", expected: "a table", found: array[index])
            }
        }
        return result
    }

    mutating func table(_ table: TOMLTable, _ key: String, path: String) -> TOMLTable? {
        guard let raw = table[key] else { return nil }
        if let nested = raw.table { return nested }
        typeMismatch(path.isEmpty ? key : "\(path).\(key)", expected: "a table", found: raw)
        return nil
    }

    /// A CPU list: the sysfs string form (`"0-3,6"`) or an array of CPU ids.
    mutating func cpuList(_ value: TOMLValueConvertible, path: String) -> CPUList? {
        if let text = value.string {
            do {
                return try CPUList(parsing: text)
            } catch {
                self.error(path, error.description)
                return nil
            }
        }
        guard let array = value.array else {
            typeMismatch(path, expected: "a CPU list (\"0-3\" or [0, 1, 2, 3])", found: value)
            return nil
        }
        var ids: [Int] = []
        var valid = true
        for index in 0..<array.count {
            guard let id = int(array[index], path: "\(path)[\(index)]") else { valid = false; continue }
            guard (0...CPUList.maximumCPUID).contains(id) else {
                error("\(path)[\(index)]", "CPU \(id) is outside 0...\(CPUList.maximumCPUID)")
                valid = false
                continue
            }
            ids.append(id)
        }
        return valid ? CPUList(ids) : nil
    }

    // MARK: Helpers

    static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a floating-point number"
        case .bool: return "a boolean"
        case .array: return "an array"
        case .table: return "a table"
        case .date, .time, .dateTime: return "a \(value.type.description)"
        }
    }

    /// The allowed key within edit distance 2 of `key`, or that starts with
    /// it (`frequencies` → `frequencies_khz`), if any (typo hints).
    static func closest(to key: String, in allowed: [String]) -> String? {
        if key.count >= 4, let extended = allowed.first(where: { $0.hasPrefix(key) }) { return extended }
        let scored = allowed.map { ($0, editDistance(key, $0)) }.filter { $0.1 <= 2 }
        return scored.min { $0.1 < $1.1 }?.0
    }

    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        if b.isEmpty { return a.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var row = [i] + Array(repeating: 0, count: b.count)
            for j in 1...b.count {
                row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = row
        }
        return previous[b.count]
    }
}
