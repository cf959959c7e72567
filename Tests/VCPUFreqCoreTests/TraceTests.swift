import Testing
@testable import VCPUFreqCore

@Suite struct TraceTests {
    @Test func parsesEveryForm() {
        let text = """
            # probe of cpu 0
            0 r 0x8
            0 w 0xc 2        # select entry 2
            1 r 0x10 4
            3 w 0x4 0x1B7740 4
            wait 1500

            2 w 0x880008 1 8
            """
        let (trace, diagnostics) = Trace.parse(text)
        #expect(diagnostics == [])
        #expect(trace.lines.map(\.number) == [2, 3, 4, 5, 6, 8])
        #expect(trace.lines.map(\.operation) == [
            .read(vcpu: 0, offset: 0x8, width: 4),
            .write(vcpu: 0, offset: 0xc, value: 2, width: 4),
            .read(vcpu: 1, offset: 0x10, width: 4),
            .write(vcpu: 3, offset: 0x4, value: 1_800_000, width: 4),
            .wait(microseconds: 1500),
            .write(vcpu: 2, offset: 0x88_0008, value: 1, width: 8),
        ])
    }

    @Test(arguments: [
        ("0 x 0x8", "neither r nor w"),
        ("0 r", "expected"),
        ("0 w 0x4", "needs a value"),
        ("zero r 0x8", "not a vCPU index"),
        ("0 r 0xZZ", "not an offset"),
        ("0 r 0x8 3 9", "too many fields"),
        ("0 r 0x8 0", "not a width"),
        ("0 r 0x8 17", "not a width"),
        ("0 w 0x4 18446744073709551616", "not a value"),
        ("0 w 0x4 0x", "not a value"),
        ("wait", "expected `wait"),
        ("wait soon", "not a number"),
        ("99999999999 r 0", "not a vCPU index"),
    ])
    func reportsBadLinesWithTheirNumber(line: String, message: String) {
        let (trace, diagnostics) = Trace.parse("0 r 0\n\(line)\n1 r 4")
        #expect(trace.lines.count == 2, "good lines around a bad one are kept")
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == 2)
        #expect(diagnostics.first?.message.contains(message) == true, "\(diagnostics)")
    }

    /// Found by the trace fuzz target: with CRLF line endings the parser
    /// saw one line ("\r\n" is a single Character), so every line ran into
    /// the next and was refused. Tests/Fuzz/regressions/trace/crlf-line-endings.
    @Test func readsCRLFLineEndings() {
        let (trace, diagnostics) = Trace.parse("0 r 0x8\r\n0 w 0xc 2\r\n\r\nwait 10 # idle\r\n1 r 0x10")
        #expect(diagnostics == [])
        #expect(trace.lines.map(\.number) == [1, 2, 4, 5])
        #expect(trace.lines.map(\.operation) == [
            .read(vcpu: 0, offset: 0x8, width: 4), .write(vcpu: 0, offset: 0xc, value: 2, width: 4),
            .wait(microseconds: 10), .read(vcpu: 1, offset: 0x10, width: 4),
        ])
    }

    /// Found by the trace fuzz target: "#" or " " followed by a combining
    /// mark is one Character, so a comment "#\u{616}..." was read as a bad
    /// line and a mark after a separator joined two words. Lines, comments and
    /// words are split on Unicode scalars, as the bytes say.
    /// Tests/Fuzz/regressions/trace/combining-mark-after-hash.
    @Test(arguments: [
        ("#\u{616}dle: a comment\n0 r 0x8", [2], [Int]()),
        ("0 r 0x8 #\u{301} note", [1], []),
        ("0 r 0x8\t#\u{20E3}", [1], []),
        ("0 r\u{301} 0x8\n1 r 0x8", [2], [1]),
        ("0 \u{301}r 0x8", [], [1]),
        ("0 r 0x8\r\u{301}\n\u{301}", [], [1, 2]),
        ("0 r 0x8\r\n\u{0}#\n1 r 0x8", [1, 3], [2]),
    ])
    func splitsOnScalarsNotCharacters(text: String, parsed: [Int], diagnosed: [Int]) {
        let (trace, diagnostics) = Trace.parse(text)
        #expect(trace.lines.map(\.number) == parsed)
        #expect(diagnostics.compactMap(\.line) == diagnosed, "\(diagnostics)")
    }

    @Test func acceptsFullRangeValues() {
        let (trace, diagnostics) = Trace.parse("0 w 0x4 0xFFFFFFFFFFFFFFFF 8\n0 w 0x4 18446744073709551615")
        #expect(diagnostics == [])
        #expect(trace.lines.map(\.operation) == [
            .write(vcpu: 0, offset: 4, value: .max, width: 8), .write(vcpu: 0, offset: 4, value: .max, width: 4),
        ])
    }
}
