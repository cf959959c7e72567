import Testing
@testable import VCPUFreqCore

@Suite struct CPUListTests {
    @Test(arguments: [
        ("0-3", [0, 1, 2, 3], "0-3"),
        ("0-3,6", [0, 1, 2, 3, 6], "0-3,6"),
        (" 4, 0 ,1 ", [0, 1, 4], "0-1,4"),
        ("", [], ""),
        ("7,7,7", [7], "7"),
    ])
    func parsesAndPrints(text: String, ids: [Int], printed: String) throws {
        let list = try CPUList(parsing: text)
        #expect(list.ids == ids)
        #expect(list.description == printed)
        #expect(try CPUList(parsing: printed) == list)
    }

    @Test(arguments: ["0-", "-1", "a", "3-1", "1,,2", "0-1-2", "99999"])
    func rejects(text: String) {
        #expect(throws: CPUList.ParseError.self) { try CPUList(parsing: text) }
    }
}
