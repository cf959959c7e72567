import Foundation

/// Reads an external benchmark's score from its output: the last match of
/// the expression; its first capture group when it has one, else the whole
/// match; a number (thousands separators "," and "_" dropped).
public struct ScoreExtractor {
    public let pattern: String
    private let expression: NSRegularExpression

    /// - Throws: `.usage` naming --score-regex when the expression does not compile.
    public init(pattern: String) throws(WorkloadBenchError) {
        self.pattern = pattern
        do {
            expression = try NSRegularExpression(pattern: pattern)
        } catch {
            throw .usage("--score-regex \"\(pattern)\": not a regular expression (\(error.localizedDescription))")
        }
    }

    /// The score in `output`, or why there is none.
    public func score(in output: String) -> Result<Double, ScoreError> {
        let range = NSRange(output.startIndex..., in: output)
        guard let match = expression.matches(in: output, range: range).last else {
            return .failure(ScoreError("no match of \(pattern) in the output"))
        }
        let group = match.numberOfRanges > 1 && match.range(at: 1).location != NSNotFound ? 1 : 0
        guard let text = Range(match.range(at: group), in: output).map({ String(output[$0]) }) else {
            return .failure(ScoreError("the match of \(pattern) has no text"))
        }
        let cleaned = text.trimmingCharacters(in: .whitespaces).replacingOccurrences(of: ",", with: "")
            .replacingOccurrences(of: "_", with: "")
        guard let value = Double(cleaned), value.isFinite else {
            return .failure(ScoreError("\"\(text)\" (matched by \(pattern)) is not a number"))
        }
        return .success(value)
    }

    public struct ScoreError: Error, Equatable, CustomStringConvertible {
        public let description: String
        init(_ description: String) { self.description = description }
    }
}

extension ScoreExtractor: @unchecked Sendable {}
