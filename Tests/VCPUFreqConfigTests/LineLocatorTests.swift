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
        ("host.cluster[2]", 2),  // line 6 is inside a string, so there is no third cluster: [host]
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
}
