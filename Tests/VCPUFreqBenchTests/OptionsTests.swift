import Testing

@testable import VCPUFreqBench

@Suite struct OptionsTests {
    @Test(arguments: [
        ("8x16", VMShape(vms: 8, vcpusPerVM: 16)), ("1x1024", VMShape(vms: 1, vcpusPerVM: 1024)),
    ])
    func shapesParse(text: String, shape: VMShape) {
        #expect(VMShape(parsing: text) == shape)
        #expect(shape.description == text)
    }

    @Test(arguments: ["8", "x8", "8x", "8x16x2", "ax2", ""])
    func badShapesDoNotParse(text: String) {
        #expect(VMShape(parsing: text) == nil)
    }

    @Test func defaultsCoverOneEightAndSixtyFourVMsUpTo1024VCPUs() {
        for quick in [false, true] {
            let options = DaemonBenchOptions(quick: quick, daemonExecutable: "/bin/true", mallocCounterLibrary: nil)
            #expect(options.problem() == nil)
            #expect(Set(options.shapes.map(\.vms)) == [1, 8, 64])
        }
        let full = DaemonBenchOptions(quick: false, daemonExecutable: "/bin/true", mallocCounterLibrary: nil)
        #expect(full.shapes.map(\.totalVCPUs).max() == 1024)
    }

    @Test(arguments: [
        ([VMShape(vms: 65, vcpusPerVM: 1)], "64 VMs"),
        ([VMShape(vms: 2, vcpusPerVM: 513)], "1024 vCPUs"),
        ([VMShape(vms: 0, vcpusPerVM: 1)], "at least 1 VM"),
        ([], "no VM shapes"),
    ])
    func shapesBeyondTheDaemonsLimitsAreRefused(shapes: [VMShape], message: String) {
        var options = DaemonBenchOptions(quick: true, daemonExecutable: "/bin/true", mallocCounterLibrary: nil)
        options.shapes = shapes
        #expect(options.problem()?.contains(message) == true)
    }

    @Test func countsSinceWrap() {
        let earlier = MallocCounts(malloc: UInt64.max, calloc: 5, realloc: 1, memalign: 0, free: 10, bytes: 100)
        let later = MallocCounts(malloc: 2, calloc: 7, realloc: 1, memalign: 4, free: 20, bytes: 300)
        let delta = later.since(earlier)
        #expect(delta == MallocCounts(malloc: 3, calloc: 2, realloc: 0, memalign: 4, free: 10, bytes: 200))
        #expect(delta.allocations == 9)
    }
}
