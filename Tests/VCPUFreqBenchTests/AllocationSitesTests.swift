import Foundation
import Testing

@testable import VCPUFreqBench

/// The resolver against this test process's own mappings and symbols.
@Suite struct AllocationSitesTests {
    static let maps = """
        55d0c0000000-55d0c0001000 r--p 00000000 fd:00 42     /usr/bin/daemon
        55d0c0001000-55d0c0005000 r-xp 00001000 fd:00 42     /usr/bin/daemon
        7f0000000000-7f0000021000 rw-p 00000000 00:00 0 
        7f1000000000-7f1000028000 r--p 00000000 fd:00 7      /usr/lib/libc.so.6
        7f1000028000-7f10001bd000 r-xp 00028000 fd:00 7      /usr/lib/libc.so.6
        7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0      [stack]
        """

    @Test func addressesMapToFileAndVirtualAddress() throws {
        let resolver = AllocationSiteResolver(mappings: AllocationSiteResolver.parse(maps: Self.maps))
        #expect(resolver.mappings.count == 4, "anonymous and [stack] mappings are not files")
        let daemon = try #require(resolver.locate(0x55d0_c000_1234))
        #expect(daemon.path == "/usr/bin/daemon")
        #expect(daemon.offset == 0x1234)
        let libc = try #require(resolver.locate(0x7f10_0003_0000))
        #expect(libc.path == "/usr/lib/libc.so.6")
        #expect(libc.offset == 0x30000)
        #expect(resolver.locate(0x7f00_0000_0010) == nil)
        #expect(resolver.locate(0x55d0_c000_5000) == nil, "end is exclusive")
    }

    @Test func liveFunctionIsNamed() throws {
        let resolver = try #require(AllocationSiteResolver(processID: getpid()))
        // dlsym(nil, …) is RTLD_DEFAULT.
        let address = UInt64(UInt(bitPattern: dlsym(nil, "getpid")))
        let located = try #require(resolver.locate(address), "getpid at 0x\(String(address, radix: 16))")
        #expect(located.path.contains("libc"))
        // One "stack" of one frame: the return address just after getpid's first byte.
        let sites = resolver.sites(from: [[address + 1]], skippingLibrary: nil)
        #expect(sites.count == 1)
        #expect(sites.first?.count == 1)
        if AllocationSiteResolver.findSymbolizer() != nil {
            #expect(sites.first?.frames.first?.contains("getpid") == true, "\(sites)")
        }
    }

    @Test(arguments: [
        (
            "function signature specialization <Arg[2] = Dead> of VCPUFreqServer.VMSession.(kicked in _A7773DD611DE7D0EBE775634BCA7DC85)(slot: Swift.Int, now: Swift.UInt64, viaDoorbell: Swift.Bool) -> ()",
            "VMSession.kicked(slot:now:viaDoorbell:)"
        ),
        (
            "merged generic specialization <Swift.UInt64> of Swift._ContiguousArrayBuffer._consumeAndCreateNew(bufferIsUnique: Swift.Bool, minimumCapacity: Swift.Int, growForAppend: Swift.Bool) -> Swift._ContiguousArrayBuffer<A>",
            "_ContiguousArrayBuffer._consumeAndCreateNew(bufferIsUnique:minimumCapacity:growForAppend:)"
        ),
        (
            "VCPUFreqServer.Server.handle(_: VCPUFreqProtocol.ClientMessage, header: VCPUFreqProtocol.MessageHeader, on: VCPUFreqServer.Connection, now: Swift.UInt64) -> ()",
            "Server.handle(_:header:on:now:)"
        ),
        ("VCPUFreqServer.Server.run() throws -> ()", "Server.run()"),
        ("closure #1 (Swift.Int, Foundation.Data) -> () in VCPUFreqServer.Server.f(x: [Swift.Int: (Swift.Int, Swift.Int)]) -> ()", "closure #1 in Server.f(x:)"),
        ("implicit closure #2 () -> Swift.String in VCPUFreqServer.Server.g() -> ()", "implicit closure #2 in Server.g()"),
        ("swift_allocObject", "swift_allocObject"),
    ])
    func callSitesAreShort(demangled: String, expected: String) {
        #expect(AllocationSiteResolver.callSite(demangled) == expected)
    }

    @Test func swiftSymbolsAreDemangled() {
        #expect(AllocationSiteResolver.demangle("$sSi1poiyS2i_SitFZ") == "static Swift.Int.+ infix(Swift.Int, Swift.Int) -> Swift.Int")
        #expect(AllocationSiteResolver.demangle("malloc") == "malloc")
    }
}
