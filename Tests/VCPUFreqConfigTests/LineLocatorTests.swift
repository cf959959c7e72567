import TOMLKit
import Testing
@testable import VCPUFreqConfig

@Suite struct LineLocatorTests {
    // Line numbers are those of this text, counted by hand.
    static let text = """
        # [not] a header = 1
        [host]
        name = "a # not a comment [x]"   # comment with = and [brackets]
        notes = \"\"\"
        cpus = "this line is inside a string"
        [[host.cluster]]
        \"\"\"
        "quoted.key" = 1

        [[host.cluster]]
        name = "first"
        frequencies_khz = [ # comment
            100,   # [0]
            "a,b", 300,
            [1, [2]],
        ]

        [[host.cluster]]
        name = "second"
        inline = { a = 1, b = { c = 2 } }

        [[vm]]
        name = "v0"
        policy.hysteresis = 4
        [vm.policy]
        latency_nice = -5
        [[vm]]
        name = 'v1'
        [vm.policy]
        latency_nice = 3
        """

    @Test(arguments: [
        ("host", 2),
        ("host.name", 3),
        ("host.notes", 4),
        ("host.cpus", 2),  // only inside a multi-line string: falls back to [host]
        ("host.quoted.key", 8),
        ("host.cluster[0]", 10),
        ("host.cluster[0].name", 11),
        ("host.cluster[0].frequencies_khz", 12),
        ("host.cluster[0].frequencies_khz[0]", 13),
        ("host.cluster[0].frequencies_khz[1]", 14),
        ("host.cluster[0].frequencies_khz[2]", 14),
        ("host.cluster[0].frequencies_khz[3]", 15),
        ("host.cluster[0].frequencies_khz[3][1][0]", 15),
        ("host.cluster[0].frequencies_khz[9]", 12),  // past the end: the key's line
        ("host.cluster[1].name", 19),
        ("host.cluster[1].inline.b.c", 20),
        ("host.cluster", 10),  // an array of tables is at its first element
        ("host.cluster[2]", 10),  // line 6 is inside a string, so there is no third cluster: the array
        ("vm[0].name", 23),
        ("vm[0].policy.hysteresis", 24),
        ("vm[0].policy.latency_nice", 26),
        ("vm[1].name", 28),
        ("vm[1].policy", 29),
        ("vm[1].policy.latency_nice", 30),
        ("vm[1].util_cap", 27),
        ("nothing.here", nil),
    ] as [(String, Int?)])
    func locates(keyPath: String, line: Int?) {
        #expect(LineLocator(source: Self.text).line(of: keyPath) == line)
    }

    /// Found by the topology fuzz target: `[vm.policy]` without a `[[vm]]`
    /// makes `vm` a table, and the error about `vm` had no line, because
    /// only the header's full path was recorded, not the table it implies
    /// (Tests/Fuzz/regressions/topology/implied-vm-table).
    @Test func locatesTablesThatHeadersAndDottedKeysImply() {
        let locator = LineLocator(source: "# vm\nheadroom = \"auto\"\n\n[vm.policy]\nhysteresis = 8\n[host]\ncluster.name = \"a\"\n")
        #expect(locator.line(of: "vm") == 4)
        #expect(locator.line(of: "vm.policy.hysteresis") == 5)
        #expect(locator.line(of: "host.cluster") == 7)
        let (topology, diagnostics) = TopologyFile.decode("[vm.policy]\nhysteresis = 8\n")
        #expect(topology == nil)
        #expect(diagnostics.filter { $0.keyPath == "vm" }.map(\.line) == [1], "\(diagnostics)")
    }

    /// Found by the topology fuzz target in CI: an unknown array of tables
    /// (`[[ho]]`, `[[r]]`) was reported as an unknown key without a line,
    /// because only its elements (`ho[0]`) were recorded, not the array
    /// (Tests/Fuzz/regressions/topology/unknown-array-of-tables).
    @Test func locatesAnArrayOfTablesAtItsFirstElement() {
        let locator = LineLocator(source: "[host]\nname = \"a\"\n[[ho]]\nx = 1\n[[ho]]\n")
        #expect(locator.line(of: "ho") == 3)
        #expect(locator.line(of: "ho[1]") == 5)
        let (topology, diagnostics) = TopologyFile.decode("[[r]]\n")
        #expect(topology == nil)
        #expect(diagnostics.filter { $0.keyPath == "r" }.map(\.line) == [1], "\(diagnostics)")
    }

    /// Found by the topology fuzz target: toml++ 3.4.0 (inside TOMLKit)
    /// asserts, aborting `vcpufreq topology check` and `serve`, on a table
    /// header whose key starts with a character no key starts with
    /// (Tests/Fuzz/regressions/topology/header-key-start), and — asserting
    /// `!is_value_terminator(*cp)` in `parse_value`, called from
    /// `parse_array` — on a `}` or a non-ASCII line break where an array
    /// value belongs (Tests/Fuzz/regressions/topology/toml-array-value-terminator).
    /// Such a file is refused with a located error before TOMLKit sees it (a
    /// miss here aborts the test process); columns count code points. Valid
    /// headers, and arrays that look like headers, still pass.
    @Test(arguments: [
        ("[[;host.cluster]]\nname = 1\n", 1, 3, "';'"),
        ("[host]\nname = \"a\"\n[[[1]]]\n", 3, 3, "'['"),
        ("[[=\n", 1, 3, "'='"),
        ("x = 1\n[ \t+a]\n", 2, 4, "'+'"),
        ("[\r\n", 1, 2, "byte 0xd"),
        ("a = [}\n", 1, 6, "'}'"),
        ("a = [1, }]\n", 1, 9, "'}'"),
        ("x = 1\nf = [\n  1200000, # c }\n  }\n", 4, 3, "'}'"),
        ("a = [[}]]\n", 1, 7, "'}'"),
        ("a = [{}, }]\n", 1, 10, "'}'"),
        ("t = { a = [ } ] }\n", 1, 13, "'}'"),
        ("a = [\"x\",}]\n", 1, 10, "'}'"),
        ("s = \"é\"\na = [ \"é\", }]\n", 2, 12, "'}'"),
        ("a = [1 }\n", 1, 8, "'}'"),
        ("a = [\u{2028}]\n", 1, 6, "U+2028"),
        ("a = [1,\u{2029}]\n", 1, 8, "U+2029"),
        ("a = [\n\u{85}1]\n", 2, 1, "U+0085"),
        ("[[;a]]\nb = [}\n", 1, 3, "';'"),
        ("b = [}\n[[;a]]\n", 1, 6, "'}'"),
        // After a byte order mark, which toml++ skips and the scan took for
        // the start of a key (Tests/Fuzz/regressions/topology/bom-before-header).
        ("\u{FEFF}[[;host.cluster]]\nname = 1\n", 1, 3, "';'"),
        ("\u{FEFF}a = [}\n", 1, 6, "'}'"),
        // A NUL escape in a basic string: valid TOML, but TOMLKit ends the
        // string there (Tests/Fuzz/regressions/topology/nul-in-a-name).
        ("[host]\nname = \"a\\u0000b\"\n", 2, 10, "NUL"),
        ("s = \"\"\"\nx\\U00000000\"\"\"\n", 2, 2, "NUL"),
        ("a = [\"\\u0000\"]\n", 1, 7, "NUL"),
    ] as [(String, Int, Int, String)])
    func refusesWhatTOMLKitWouldAbortOn(text: String, line: Int, column: Int, shown: String) {
        let (topology, diagnostics) = TopologyFile.decode(text)
        #expect(topology == nil)
        #expect(diagnostics.count == 1)
        #expect(diagnostics.first?.line == line && diagnostics.first?.column == column, "\(diagnostics)")
        #expect(diagnostics.first?.message.contains(shown) == true, "\(diagnostics)")
    }

    /// Why a NUL escape is refused: TOMLKit 0.6.0 hands strings over as C
    /// strings, so "x\u0000y" reads as "x". When this fails, TOMLKit keeps
    /// the whole string and the refusal can go.
    @Test func tomlKitEndsAStringAtANUL() throws {
        var decoder = TopologyDecoder()
        let topology = decoder.decode(try TOMLTable(string: "[host]\nname = \"x\\u0000y\"\n"))
        #expect(topology.host.name == "x")
    }

    @Test func keepsValidHeadersAndArraysOfArrays() {
        for text in ["[ host ]\n", "[[ \"vm\" ]]\n", "['a'.b]\n", "[_-0]\n", "a = [\n[+1, 2],\n[{ b = 1 }],\n]\n", "\u{FEFF}[host]\n"] {
            #expect(LineLocator(source: text).abortsTOMLKit == nil, "\(text)")
        }
    }

    /// A file saved with a byte order mark is the same file: the same
    /// topology, the same lines.
    @Test func aByteOrderMarkChangesNothing() {
        let text = "[host]\nname = \"a\"\n[[host.cluster]]\nname = \"c\"\n"
        let marked = "\u{FEFF}" + text
        #expect(LineLocator(source: marked).knownPaths == LineLocator(source: text).knownPaths)
        #expect(LineLocator(source: marked).line(of: "host.cluster[0].name") == 4)
        let (plain, plainDiagnostics) = TopologyFile.decode(text)
        let (withMark, markDiagnostics) = TopologyFile.decode(marked)
        #expect(plain == withMark)
        #expect(plainDiagnostics.map(\.description) == markDiagnostics.map(\.description))
    }

    /// Valid TOML with `}`, brackets, commas and line separators where they
    /// belong (strings, comments, inline tables, nested arrays, CRLF) passes
    /// the pre-check and parses: TOMLKit reports no syntax error (those
    /// have no key path), only what a topology lacks.
    @Test(arguments: [
        "a = []\n", "a = [ ]\n", "a = [1, 2, 3,]\n",
        "a = [\n  1, # one\n  2, # }\n]\n",
        "a = [\n  # only a comment }\n]\n",
        "a = [[1, 2], [], [[3]]]\n",
        "a = [{}, { b = 1 }, { c = [1, { d = 2 }] }]\n",
        "t = { a = [1], b = { c = [] } }\nu = {}\n",
        "a = [\"}\", '}', \"]\", \",\", \"[\", \"\\\"}\", \"{}\"]\n",
        "a = [\"\"\"\n}\n\"\"\", '''\n} ,]\n''']\n",
        "# a = [}\nb = 1 # [}\n",
        "a = \"[}\"\n",
        "a = [\r\n  1,\r\n]\r\n",
        "a = [ 1979-05-27T07:32:00Z, 1.5, true, inf ]\n",
        "s = \"\u{2028} \u{85}\"\nt = [ \"\u{2029}\" ]\n",
        "[host]\nname = \"x\"\n[[host.cluster]]\nfrequencies_khz = [\n    1200000, # }\n    2400000,\n]\n",
        "a = 'x\\u0000'\nb = \"\\\\u0000\"\nc = \"\\u0001\" # \\u0000\n",
    ])
    func keepsValidArrays(text: String) {
        #expect(LineLocator(source: text).abortsTOMLKit == nil, "\(text)")
        let (_, diagnostics) = TopologyFile.decode(text)
        #expect(!diagnostics.isEmpty && !diagnostics.contains { $0.keyPath.isEmpty }, "\(diagnostics)")
    }
}
