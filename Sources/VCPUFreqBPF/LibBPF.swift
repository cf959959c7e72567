// The C boundary of VCPUFreqBPF: the only Swift file that imports CLibBPF.
// Everything above it sees OpaquePointer handles, Int32 file descriptors and
// Swift values; no C type leaves this file.
import CLibBPF
import Glibc
import Logging
import VCPUFreqCore
import VCPUFreqLinux
import VCPUFreqProtocol

/// Thin calls into libbpf 1.1 (Debian libbpf-dev 1.1.2). In libbpf 1.x,
/// pointer-returning calls return NULL and set errno, int-returning calls
/// return a negative errno; `check` and `reason(errno:)` turn both into
/// messages.
enum LibBPF {
    /// Names of the maps in bpf/vcpufreq.bpf.c.
    static let threadsMapName = "threads"
    static let cpuRuntimeMapName = "cpu_runtime"
    static let utilHintMapName = "util_hint"
    /// The shared-page maps (bpf/vcpufreq_slot.h).
    static let vmPagesMapName = "vm_pages"
    static let vmCapsMapName = "vm_caps"
    static let vcpuThreadsMapName = "vcpu_threads"
    static let cpuInfoMapName = "cpu_info"

    // MARK: - libbpf's printing, routed into swift-log

    static let logger = Logger(label: "vcpufreq.bpf")

    /// libbpf prints through one process-wide callback; install ours once.
    private static let printHandlerInstalled: Void = {
        _ = libbpf_set_print(libbpfPrint)
    }()

    /// Loads run one at a time in the process so the messages libbpf prints
    /// during a load (which name the failing program or map) can be told
    /// apart; loading is rare (start-up), so the lock costs nothing.
    private static let loadLock = AnnotatedMutex<Void>(())
    /// Messages printed while a load is in progress (nil: not capturing).
    private static let captured = AnnotatedMutex<[String]?>(nil)

    fileprivate static func deliver(level: libbpf_print_level, message: String) {
        switch level {
        case LIBBPF_WARN: logger.warning("\(message)")
        case LIBBPF_INFO: logger.info("\(message)")
        default: logger.debug("\(message)")
        }
        guard level != LIBBPF_DEBUG else { return }
        captured.withLock { lines in
            if lines != nil, lines!.count < 200 { lines!.append(message) }
        }
    }

    // MARK: - Errors

    /// A readable reason for an errno (libbpf's own codes 4000... included).
    static func reason(errno code: Int32) -> String {
        let code = code < 0 ? -code : code
        var buffer = [CChar](repeating: 0, count: 256)
        _ = libbpf_strerror(Int32(code), &buffer, buffer.count)
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return text.isEmpty ? "error \(code)" : "\(text) (errno \(code))"
    }

    /// errno of the last failed call, never 0 (a NULL with errno 0 is still a failure).
    private static func lastErrno() -> Int32 { errno == 0 ? EINVAL : errno }

    // MARK: - Objects

    /// Opens (parses, does not load) a BPF ELF object from memory. The log
    /// buffer receives the verifier log of a failing program at load time and
    /// must outlive the object.
    static func openObject(
        bytes: UnsafeRawBufferPointer, name: String, logBuffer: UnsafeMutablePointer<CChar>, logSize: Int
    ) throws -> OpaquePointer {
        _ = printHandlerInstalled
        var options = bpf_object_open_opts()
        options.sz = MemoryLayout<bpf_object_open_opts>.size
        options.kernel_log_buf = logBuffer
        options.kernel_log_size = logSize
        options.kernel_log_level = 0  // log only on failure: libbpf retries with level 1 into our buffer
        return try name.withCString { cName in
            options.object_name = cName  // libbpf copies it
            errno = 0
            guard let base = bytes.baseAddress, bytes.count > 0,
                let object = bpf_object__open_mem(base, bytes.count, &options)
            else {
                throw BPFError.invalidObject(object: name, reason: reason(errno: bytes.isEmpty ? EINVAL : lastErrno()))
            }
            return object
        }
    }

    static func closeObject(_ object: OpaquePointer) {
        bpf_object__close(object)
    }

    /// Loads every map and every program whose autoload is on. On failure
    /// libbpf has already unloaded everything; the error names what failed.
    static func loadObject(_ object: OpaquePointer, name: String, logBuffer: UnsafeMutablePointer<CChar>) throws {
        let (result, messages): (Int32, [String]) = loadLock.withLock { _ in
            logBuffer[0] = 0
            captured.withLock { $0 = [] }
            let result = bpf_object__load(object)
            let messages = captured.withLock { lines -> [String] in
                defer { lines = nil }
                return lines ?? []
            }
            return (result, messages)
        }
        guard result < 0 else { return }
        let code = -result
        let culprit = failingPart(in: messages)
        let log = verifierLogTail(String(cString: logBuffer))
        if (code == EPERM || (code == EACCES && log == nil)) && !Privileges.current().canLoadBPF {
            throw BPFError.permissionDenied(
                operation: culprit.map { "\($0.kind) '\($0.name)'" } ?? "bpf_object__load",
                reason: "\(reason(errno: code)); \(Privileges.current().summary)")
        }
        // libbpf's first complaint is the specific one; later lines only say the object failed.
        let detail = messages.first { $0.contains("failed") || $0.contains("error") } ?? reason(errno: code)
        throw BPFError.loadFailed(object: name, program: culprit?.name, reason: detail, verifierLog: log)
    }

    /// The first "prog 'X'" or "map 'X'" libbpf named in its warnings.
    static func failingPart(in messages: [String]) -> (kind: String, name: String)? {
        for message in messages {
            for kind in ["prog", "map"] {
                guard let start = message.firstRange(of: "\(kind) '") else { continue }
                let rest = message[start.upperBound...]
                guard let end = rest.firstIndex(of: "'") else { continue }
                return (kind == "prog" ? "program" : "map", String(rest[..<end]))
            }
        }
        return nil
    }

    /// The last lines of a verifier log: the verifier states its complaint at the end.
    static func verifierLogTail(_ log: String, maxLines: Int = 30) -> String? {
        let lines = log.split(separator: "\n", omittingEmptySubsequences: true)
        guard !lines.isEmpty else { return nil }
        return lines.suffix(maxLines).joined(separator: "\n")
    }

    // MARK: - Programs

    static func programs(of object: OpaquePointer) -> [(handle: OpaquePointer, name: String, section: String)] {
        var result: [(OpaquePointer, String, String)] = []
        var program = bpf_object__next_program(object, nil)
        while let current = program {
            let name = bpf_program__name(current).map { String(cString: $0) } ?? "?"
            let section = bpf_program__section_name(current).map { String(cString: $0) } ?? "?"
            result.append((current, name, section))
            program = bpf_object__next_program(object, current)
        }
        return result
    }

    static func setAutoload(_ program: OpaquePointer, _ enabled: Bool) -> Int32 {
        bpf_program__set_autoload(program, enabled)
    }

    /// Attaches by the program's section (tp_btf/..., tracepoint/...).
    static func attach(_ program: OpaquePointer) -> (link: OpaquePointer?, errno: Int32) {
        errno = 0
        guard let link = bpf_program__attach(program) else { return (nil, lastErrno()) }
        return (link, 0)
    }

    static func attachTracepoint(_ program: OpaquePointer, category: String, name: String)
        -> (link: OpaquePointer?, errno: Int32)
    {
        errno = 0
        guard let link = bpf_program__attach_tracepoint(program, category, name) else { return (nil, lastErrno()) }
        return (link, 0)
    }

    static func destroyLink(_ link: OpaquePointer) {
        _ = bpf_link__destroy(link)
    }

    // MARK: - Maps of an object

    static func findMap(_ object: OpaquePointer, name: String) -> OpaquePointer? {
        bpf_object__find_map_by_name(object, name)
    }

    static func mapFD(_ map: OpaquePointer) -> Int32 { bpf_map__fd(map) }
    static func mapKeySize(_ map: OpaquePointer) -> Int { Int(bpf_map__key_size(map)) }
    static func mapValueSize(_ map: OpaquePointer) -> Int { Int(bpf_map__value_size(map)) }

    static func setPinPath(_ map: OpaquePointer, _ path: String?) -> Int32 {
        guard let path else { return bpf_map__set_pin_path(map, nil) }
        return bpf_map__set_pin_path(map, path)
    }

    static func setMaxEntries(_ map: OpaquePointer, _ count: UInt32) -> Int32 {
        bpf_map__set_max_entries(map, count)
    }

    static func unpin(_ map: OpaquePointer) -> Int32 { bpf_map__unpin(map, nil) }

    // MARK: - Maps by file descriptor

    /// 0, or the errno of the failed call.
    static func lookup(fd: Int32, key: UnsafeRawPointer, value: UnsafeMutableRawPointer) -> Int32 {
        bpf_map_lookup_elem(fd, key, value) < 0 ? lastErrno() : 0
    }

    /// How `update` treats an existing or missing key.
    enum UpdateMode {
        case any, onlyNew, onlyExisting
        var flags: UInt64 {
            switch self {
            case .any: return UInt64(BPF_ANY)
            case .onlyNew: return UInt64(BPF_NOEXIST)
            case .onlyExisting: return UInt64(BPF_EXIST)
            }
        }
    }

    static func update(fd: Int32, key: UnsafeRawPointer, value: UnsafeRawPointer, mode: UpdateMode) -> Int32 {
        bpf_map_update_elem(fd, key, value, mode.flags) < 0 ? lastErrno() : 0
    }

    static func delete(fd: Int32, key: UnsafeRawPointer) -> Int32 {
        bpf_map_delete_elem(fd, key) < 0 ? lastErrno() : 0
    }

    /// Opens a pinned map: its fd, key and value sizes, or the errno.
    static func openPinnedMap(path: String) -> (fd: Int32, keySize: Int, valueSize: Int, name: String)? {
        errno = 0
        let fd = bpf_obj_get(path)
        guard fd >= 0 else { return nil }
        var info = bpf_map_info()
        var length = UInt32(MemoryLayout<bpf_map_info>.size)
        guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0 else {
            let saved = errno
            close(fd)
            errno = saved
            return nil
        }
        let name = withUnsafeBytes(of: info.name) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return (fd, Int(info.key_size), Int(info.value_size), name)
    }

    /// The max_entries of the map pinned at `path`; nil when nothing (or no map) is pinned there.
    static func pinnedMapMaxEntries(path: String) -> UInt32? {
        let fd = bpf_obj_get(path)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = bpf_map_info()
        var length = UInt32(MemoryLayout<bpf_map_info>.size)
        guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0 else { return nil }
        return info.max_entries
    }

    // MARK: - struct_ops (the sched_ext scheduler)

    /// `BPF_F_LINK` (Linux 6.4): a struct_ops map registered through a BPF
    /// link, so closing the link (or the process dying) unregisters it.
    /// Bookworm's kernel headers predate it.
    static let mapFlagLink: UInt32 = 1 << 13
    /// `BPF_STRUCT_OPS`, the attach type of `BPF_LINK_CREATE` for a struct_ops map (Linux 6.4).
    static let structOpsAttachType: UInt32 = 44

    static func mapFlags(_ map: OpaquePointer) -> UInt32 { bpf_map__map_flags(map) }

    static func setMapFlags(_ map: OpaquePointer, _ flags: UInt32) -> Int32 { bpf_map__set_map_flags(map, flags) }

    /// Loads `program` as sleepable (`BPF_F_SLEEPABLE`): libbpf 1.1 has no
    /// `struct_ops.s/` section name for it.
    static func setSleepable(_ program: OpaquePointer) -> Int32 {
        bpf_program__set_flags(program, bpf_program__flags(program) | UInt32(BPF_F_SLEEPABLE))
    }

    /// An attached struct_ops map: a kernel link (fd), and the libbpf link
    /// object when libbpf made it.
    struct StructOpsLink {
        var descriptor: Int32
        var libbpfLink: OpaquePointer?
    }

    /// Registers a loaded struct_ops map created with `BPF_F_LINK` through a
    /// kernel BPF link. libbpf 1.1's `bpf_map__attach_struct_ops` only
    /// writes the map's value (for a link map the kernel then holds it ready,
    /// unregistered) and hands back a pseudo-link holding the map's own fd;
    /// the link itself is `BPF_LINK_CREATE` on the map. libbpf 1.2 and later
    /// create the link inside that call: then its link is used.
    static func attachStructOps(_ map: OpaquePointer) -> (link: StructOpsLink?, errno: Int32) {
        errno = 0
        guard let attached = bpf_map__attach_struct_ops(map) else { return (nil, lastErrno()) }
        let mapDescriptor = bpf_map__fd(map)
        let linkDescriptor = bpf_link__fd(attached)
        if linkDescriptor >= 0 && linkDescriptor != mapDescriptor {
            return (StructOpsLink(descriptor: linkDescriptor, libbpfLink: attached), 0)
        }
        // The pseudo-link's detach would delete the map's value and its
        // destroy would not close anything of ours: let it go quietly.
        bpf_link__disconnect(attached)
        _ = bpf_link__destroy(attached)
        errno = 0
        let descriptor = bpf_link_create(mapDescriptor, 0, bpf_attach_type(rawValue: structOpsAttachType), nil)
        guard descriptor >= 0 else { return (nil, descriptor < -1 ? -descriptor : lastErrno()) }
        return (StructOpsLink(descriptor: descriptor, libbpfLink: nil), 0)
    }

    static func detachStructOps(_ link: StructOpsLink) {
        if let libbpfLink = link.libbpfLink {
            _ = bpf_link__destroy(libbpfLink)
        } else {
            close(link.descriptor)
        }
    }

    /// CPUs the kernel may ever bring online (`/sys/devices/system/cpu/possible`):
    /// the number of values of a per-CPU map entry. At least 1.
    static func possibleCPUCount() -> Int { max(1, Int(libbpf_num_possible_cpus())) }

    /// BTF_KIND_FUNC (the name is ambiguous between the kernel's and libbpf's headers).
    private static let btfKindFunction: UInt32 = 12

    /// Which of `functions` (BTF_KIND_FUNC) and `structs` the kernel BTF at
    /// `path` lacks; a reason instead when the file cannot be parsed.
    static func missingKernelTypes(btfPath path: String, functions: [String], structs: [String]) -> Result<[String], BPFError> {
        errno = 0
        guard let btf = btf__parse(path, nil) else {
            return .failure(.invalidObject(object: path, reason: reason(errno: lastErrno())))
        }
        defer { btf__free(btf) }
        var missing: [String] = []
        for name in functions where btf__find_by_name_kind(btf, name, btfKindFunction) < 0 { missing.append(name) }
        for name in structs where btf__find_by_name_kind(btf, name, UInt32(BTF_KIND_STRUCT)) < 0 {
            missing.append("struct \(name)")
        }
        return .success(missing)
    }

    // MARK: - The scheduler's map values

    static let schedulerCPUSize = MemoryLayout<vcpufreq_sched_cpu>.size
    static let schedulerMaxCPUs = Int(VCPUFREQ_SCHED_MAX_CPUS)
    static let schedulerMaxClusters = Int(VCPUFREQ_SCHED_MAX_CLUSTERS)
    static let noCluster = UInt32(VCPUFREQ_SCHED_NO_CLUSTER)

    static func writeSchedulerConfig(fd: Int32, _ settings: SchedulerSettings, clusterCount: Int, cpuCount: Int) -> Int32 {
        var key: UInt32 = 0
        var value = vcpufreq_sched_config(
            cluster_count: UInt32(clusterCount), slice_us: settings.sliceMicroseconds,
            boost_us: settings.boostMicroseconds, default_boost_us: settings.defaultBoostMicroseconds,
            boost_share_permille: settings.boostSharePermille, nr_cpus: UInt32(cpuCount))
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    static func writeSchedulerCluster(fd: Int32, rank: Int, capacity: Int, cpus: [Int]) -> Int32 {
        var key = UInt32(rank)
        var value = vcpufreq_sched_cluster()
        value.capacity = UInt32(clamping: capacity)
        value.cpu_count = UInt32(cpus.count)
        withUnsafeMutableBytes(of: &value.cpus) { raw in
            let words = raw.bindMemory(to: UInt64.self)
            for cpu in cpus where cpu >= 0 && cpu / 64 < words.count { words[cpu / 64] |= 1 << UInt64(cpu % 64) }
        }
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    /// The keys of a hash map, at most `limit` (bpf_map_get_next_key).
    static func keys(fd: Int32, limit: Int) -> [UInt32] {
        var keys: [UInt32] = []
        var next: UInt32 = 0
        var code = bpf_map_get_next_key(fd, nil, &next)
        while code == 0, keys.count < limit {
            keys.append(next)
            var previous = next
            code = bpf_map_get_next_key(fd, &previous, &next)
        }
        return keys
    }

    // MARK: - Shared pages as BPF maps

    /// Creates one VM's page map: an mmapable BPF array of `pages` 4 KiB
    /// values, flagged as an inner map so that vm_pages takes it whatever its
    /// page count (BPF_F_INNER_MAP). Its fd, or the errno.
    static func createPageMap(pages: Int) -> (fd: Int32, errno: Int32) {
        var options = bpf_map_create_opts()
        options.sz = MemoryLayout<bpf_map_create_opts>.size
        options.map_flags = UInt32(BPF_F_MMAPABLE | BPF_F_INNER_MAP)
        errno = 0
        let fd = bpf_map_create(
            BPF_MAP_TYPE_ARRAY, "vcpufreq_page", 4, UInt32(VCPUFREQ_PAGE_SIZE), UInt32(max(pages, 1)), &options)
        return fd >= 0 ? (fd, 0) : (-1, fd < 0 ? -fd : lastErrno())
    }

    /// vm_pages[index] = the page map `pageFD` (or deletes the entry for nil).
    static func setPage(outerFD: Int32, index: UInt32, pageFD: Int32?) -> Int32 {
        var key = index
        guard var value = pageFD else {
            let code = delete(fd: outerFD, key: &key)
            return code == ENOENT ? 0 : code
        }
        return update(fd: outerFD, key: &key, value: &value, mode: .any)
    }

    /// vm_caps[index]; a zeroed value (vm_id 0) marks the index free.
    static func setCaps(fd: Int32, index: UInt32, vmID: UInt32, vcpuCount: UInt32, caps: GuestValueCaps?) -> Int32 {
        var key = index
        var value = vcpufreq_vm_caps()
        if let caps {
            value.vm_id = vmID
            value.vcpu_count = vcpuCount
            value.features = caps.features.rawValue
            value.util_cap = UInt32(caps.utilizationCap)
            value.boost_util = UInt32(caps.boostUtilization)
            value.max_perf_khz = caps.maximumPerformanceKHz
        }
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    /// Resets CPU `cpu`'s entry and sets its cluster (nil: in none).
    static func writeSchedulerCPU(fd: Int32, cpu: Int, clusterRank: Int?) -> Int32 {
        var key = UInt32(cpu)
        var value = vcpufreq_sched_cpu()
        value.cluster = clusterRank.map { UInt32($0) } ?? noCluster
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    static func readSchedulerCPU(fd: Int32, cpu: Int) -> SchedulerCPUState? {
        var key = UInt32(cpu)
        var value = vcpufreq_sched_cpu()
        guard lookup(fd: fd, key: &key, value: &value) == 0 else { return nil }
        return SchedulerCPUState(
            cpu: cpu, clusterRank: value.cluster == noCluster ? nil : Int(value.cluster), utilSum: value.util_sum,
            hintedRunnable: value.hinted_runnable, hintedQueued: value.hinted_queued,
            hintedRuntimeNanoseconds: value.hinted_runtime_ns, boostedRuntimeNanoseconds: value.boosted_runtime_ns,
            runningBoosted: value.running_boosted != 0, virtualTimeNanoseconds: value.vtime_now)
    }

    /// The counters summed over every CPU's copy; nil on error (errno set).
    static func readSchedulerCounters(fd: Int32) -> SchedulerCounters? {
        let cpus = possibleCPUCount()
        let stride = (MemoryLayout<vcpufreq_sched_counters>.size + 7) & ~7
        var buffer = [UInt8](repeating: 0, count: stride * cpus)
        var key: UInt32 = 0
        let code = buffer.withUnsafeMutableBytes { lookup(fd: fd, key: &key, value: $0.baseAddress!) }
        guard code == 0 else { errno = code; return nil }
        var total = SchedulerCounters()
        buffer.withUnsafeBytes { raw in
            for index in 0..<cpus {
                let c = raw.loadUnaligned(fromByteOffset: index * stride, as: vcpufreq_sched_counters.self)
                total.enqueuedFair &+= c.enqueued_fair
                total.enqueuedHinted &+= c.enqueued_hinted
                total.placedIdle &+= c.placed_idle
                total.placedBusy &+= c.placed_busy
                total.noCluster &+= c.no_cluster
                total.capOverridden &+= c.cap_overridden
                total.boosts &+= c.boosts
                total.boostPreemptions &+= c.boost_preemptions
                total.boostsExpired &+= c.boosts_expired
                total.boostsDenied &+= c.boosts_denied
                total.boostedRuntimeNanoseconds &+= c.boosted_runtime_ns
                total.dispatchedOwn &+= c.dispatched_own
                total.dispatchedStolen &+= c.dispatched_stolen
                total.hintLookups &+= c.hint_lookups
                total.slotReads &+= c.slot_reads
            }
        }
        return total
    }

    /// The exit record; nil when the scheduler has not exited (kind 0) or on error.
    static func readSchedulerExit(fd: Int32) -> SchedulerExit? {
        var key: UInt32 = 0
        var value = vcpufreq_sched_exit()
        guard lookup(fd: fd, key: &key, value: &value) == 0, value.kind != 0 else { return nil }
        func text<T>(_ tuple: T) -> String {
            withUnsafeBytes(of: tuple) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return SchedulerExit(
            kind: value.kind, code: value.exit_code, cpu: value.exit_cpu, reason: text(value.reason),
            message: text(value.msg))
    }

    /// vcpu_threads[tid] = (vm index, vCPU, VM id).
    static func setVCPUReference(fd: Int32, tid: UInt32, vmIndex: UInt32, vcpu: UInt32, vmID: UInt32) -> Int32 {
        var key = tid
        var value = vcpufreq_vcpu_ref(vm_index: vmIndex, vcpu: vcpu, vm_id: vmID, reserved: 0)
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    /// cpu_info[cpu]; nil clears it (a CPU the topology does not list).
    static func setCPUInfo(fd: Int32, cpu: UInt32, cluster: Int?, capacity: Int) -> Int32 {
        var key = cpu
        var value = vcpufreq_cpu_info()
        if let cluster {
            value.capacity = UInt16(min(max(capacity, 0), 1024))
            value.cluster = UInt8(min(max(cluster, 0), 255))
            value.known = 1
        }
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    /// The ordered view of `struct vcpufreq_guest_samples`; nil when the
    /// programs never read a slot for the thread.
    static func guestSamples(_ g: vcpufreq_guest_samples) -> StatusDocument.GuestSamples? {
        guard g.reads > 0 || g.busy > 0 else { return nil }
        let honoured = SharedPageABI.GuestFlags(rawValue: g.last_flags)
        return StatusDocument.GuestSamples(
            reads: g.reads, busy: g.busy, newRequests: g.new_requests, capped: g.capped, rejected: g.rejected,
            utilizationReads: g.util_reads, utilizationSum: g.util_sum, latencyReads: g.latency_reads,
            boostReads: g.boost_reads, lastReadNanoseconds: g.last_read_ns, lastSequence: g.last_sequence,
            lastFlags: g.last_flags, lastUtilization: honoured.contains(.utilValid) ? g.last_utilization : nil,
            lastPerformanceKHz: honoured.contains(.perfValid) ? g.last_perf_khz : nil)
    }

    // MARK: - The vcpufreq map values

    /// Size of `struct vcpufreq_thread_stats`, the value of map "threads".
    static let threadStatsSize = MemoryLayout<vcpufreq_thread_stats>.size
    /// Size of `struct vcpufreq_util_hint`, the value of map "util_hint".
    static let utilHintSize = MemoryLayout<vcpufreq_util_hint>.size

    /// CLOCK_MONOTONIC, the clock of bpf_ktime_get_ns(), ns.
    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) &* 1_000_000_000 &+ UInt64(now.tv_nsec)
    }

    /// Starts tracking `tid`: a fresh zeroed entry (last CPU unknown). An
    /// entry that exists already is kept with its counters.
    static func insertThread(fd: Int32, tid: UInt32) -> Int32 {
        var key = tid
        var value = vcpufreq_thread_stats()
        value.last_cpu = -1
        value.tracked_since_ns = monotonicNanoseconds()
        let code = update(fd: fd, key: &key, value: &value, mode: .onlyNew)
        return code == EEXIST ? 0 : code
    }

    /// A zeroed per-CPU runtime entry for `tid` (an existing one is kept).
    static func insertCPURuntime(fd: Int32, tid: UInt32) -> Int32 {
        var key = tid
        var zeros = [UInt64](repeating: 0, count: possibleCPUCount())
        let code = zeros.withUnsafeMutableBytes { update(fd: fd, key: &key, value: $0.baseAddress!, mode: .onlyNew) }
        return code == EEXIST ? 0 : code
    }

    /// `tid`'s time on each CPU (index = CPU), ns; [] when it has no entry.
    static func readCPURuntime(fd: Int32, tid: UInt32) -> [UInt64] {
        var key = tid
        var values = [UInt64](repeating: 0, count: possibleCPUCount())
        let code = values.withUnsafeMutableBytes { lookup(fd: fd, key: &key, value: $0.baseAddress!) }
        return code == 0 ? values : []
    }

    /// The counters of `tid`, or nil when it is not tracked (errno otherwise).
    static func readThread(fd: Int32, tid: UInt32) -> (stats: ThreadStats, exits: ExitCounts)?? {
        var key = tid
        var value = vcpufreq_thread_stats()
        let code = lookup(fd: fd, key: &key, value: &value)
        if code == ENOENT { return .some(nil) }
        guard code == 0 else { errno = code; return nil }
        let histogram = withUnsafeBytes(of: value.delay_hist) { Array($0.bindMemory(to: UInt64.self)) }
        // Add the slice it is in now (bpf_ktime_get_ns() is CLOCK_MONOTONIC).
        let nowNanoseconds = monotonicNanoseconds()
        let switchedIn = value.switched_in_ns
        let current = switchedIn != 0 && nowNanoseconds > switchedIn ? nowNanoseconds - switchedIn : 0
        let stats = ThreadStats(
            runtimeNanoseconds: value.runtime_ns &+ current,
            isOnCPU: switchedIn != 0,
            wakeups: value.wakeups,
            voluntarySwitches: value.voluntary_switches,
            involuntarySwitches: value.involuntary_switches,
            migrations: value.migrations,
            runDelay: RunDelayHistogram(
                buckets: histogram, sumNanoseconds: value.delay_sum_ns, count: value.delay_count),
            lastCPU: value.last_cpu >= 0 ? Int(value.last_cpu) : nil, guest: guestSamples(value.guest))
        let e = value.exits
        let reasons = withUnsafeBytes(of: e.userspace_exit) { Array($0.bindMemory(to: UInt64.self)) }
        let exits = ExitCounts(
            kvmExits: e.kvm_exit, userspaceExitsByReason: reasons, userspaceExitsOtherReason: e.userspace_exit_other,
            userspaceExitsInterrupted: e.userspace_exit_eintr, userspaceExitErrors: e.userspace_exit_error,
            mmioReads: e.mmio_read, mmioWrites: e.mmio_write, mmioUnsatisfiedReads: e.mmio_unsatisfied_read,
            pioIn: e.pio_in, pioOut: e.pio_out)
        return .some((stats, exits))
    }

    /// The hint of `tid`; `.some(nil)` when it has none, nil on error (errno set).
    static func readHint(fd: Int32, tid: UInt32) -> UtilHint?? {
        var key = tid
        var value = vcpufreq_util_hint()
        let code = lookup(fd: fd, key: &key, value: &value)
        if code == ENOENT { return .some(nil) }
        guard code == 0 else { errno = code; return nil }
        return .some(
            UtilHint(
                utilMin: value.util_min, utilMax: value.util_max,
                flags: UtilHint.Flags(rawValue: value.flags), sliceMicroseconds: value.slice_us,
                sequence: value.seq))
    }

    /// Writes the whole hint of `tid` in one update (readers never see a mix).
    static func writeHint(fd: Int32, tid: UInt32, _ hint: UtilHint) -> Int32 {
        var key = tid
        var value = vcpufreq_util_hint(
            util_min: hint.utilMin, util_max: hint.utilMax, flags: hint.flags.rawValue,
            slice_us: hint.sliceMicroseconds, seq: hint.sequence)
        return update(fd: fd, key: &key, value: &value, mode: .any)
    }

    // MARK: - Layout, for the tests that prove C, BTF and the documentation agree

    /// One field of a C struct as the host compiler lays it out.
    private static func field<Root, Value>(_ name: String, _ path: KeyPath<Root, Value>) -> StructLayout.Field {
        StructLayout.Field(name: name, offset: MemoryLayout<Root>.offset(of: path) ?? -1, size: MemoryLayout<Value>.size)
    }

    /// Field offsets and sizes of the C structs as the host compiler lays
    /// them out (through the Clang importer).
    static func hostLayouts() -> [StructLayout] {
        typealias T = vcpufreq_thread_stats
        typealias E = vcpufreq_exit_counts
        typealias H = vcpufreq_util_hint
        typealias G = vcpufreq_guest_samples
        typealias R = vcpufreq_vcpu_ref
        typealias C = vcpufreq_vm_caps
        typealias I = vcpufreq_cpu_info
        return [
            StructLayout(
                name: "vcpufreq_thread_stats", size: MemoryLayout<T>.size,
                fields: [
                    field("runtime_ns", \T.runtime_ns), field("wakeups", \T.wakeups),
                    field("voluntary_switches", \T.voluntary_switches),
                    field("involuntary_switches", \T.involuntary_switches), field("migrations", \T.migrations),
                    field("delay_sum_ns", \T.delay_sum_ns), field("delay_count", \T.delay_count),
                    field("delay_hist", \T.delay_hist), field("switched_in_ns", \T.switched_in_ns),
                    field("runnable_since_ns", \T.runnable_since_ns),
                    field("tracked_since_ns", \T.tracked_since_ns), field("exec_base_ns", \T.exec_base_ns),
                    field("run_delay_base_ns", \T.run_delay_base_ns), field("flags", \T.flags),
                    field("last_cpu", \T.last_cpu), field("exits", \T.exits), field("guest", \T.guest),
                ]),
            StructLayout(
                name: "vcpufreq_guest_samples", size: MemoryLayout<G>.size,
                fields: [
                    field("reads", \G.reads), field("busy", \G.busy), field("new_requests", \G.new_requests),
                    field("capped", \G.capped), field("rejected", \G.rejected), field("util_reads", \G.util_reads),
                    field("util_sum", \G.util_sum), field("latency_reads", \G.latency_reads),
                    field("boost_reads", \G.boost_reads), field("last_read_ns", \G.last_read_ns),
                    field("last_sequence", \G.last_sequence), field("last_flags", \G.last_flags),
                    field("last_utilization", \G.last_utilization), field("last_perf_khz", \G.last_perf_khz),
                ]),
            StructLayout(
                name: "vcpufreq_vcpu_ref", size: MemoryLayout<R>.size,
                fields: [
                    field("vm_index", \R.vm_index), field("vcpu", \R.vcpu), field("vm_id", \R.vm_id),
                    field("reserved", \R.reserved),
                ]),
            StructLayout(
                name: "vcpufreq_vm_caps", size: MemoryLayout<C>.size,
                fields: [
                    field("vm_id", \C.vm_id), field("vcpu_count", \C.vcpu_count), field("features", \C.features),
                    field("util_cap", \C.util_cap), field("boost_util", \C.boost_util),
                    field("max_perf_khz", \C.max_perf_khz),
                ]),
            StructLayout(
                name: "vcpufreq_cpu_info", size: MemoryLayout<I>.size,
                fields: [field("capacity", \I.capacity), field("cluster", \I.cluster), field("known", \I.known)]),
            StructLayout(
                name: "vcpufreq_exit_counts", size: MemoryLayout<E>.size,
                fields: [
                    field("kvm_exit", \E.kvm_exit), field("userspace_exit", \E.userspace_exit),
                    field("userspace_exit_other", \E.userspace_exit_other),
                    field("userspace_exit_eintr", \E.userspace_exit_eintr),
                    field("userspace_exit_error", \E.userspace_exit_error), field("mmio_read", \E.mmio_read),
                    field("mmio_write", \E.mmio_write), field("mmio_unsatisfied_read", \E.mmio_unsatisfied_read),
                    field("pio_in", \E.pio_in), field("pio_out", \E.pio_out),
                ]),
            StructLayout(
                name: "vcpufreq_util_hint", size: MemoryLayout<H>.size,
                fields: [
                    field("util_min", \H.util_min), field("util_max", \H.util_max), field("flags", \H.flags),
                    field("slice_us", \H.slice_us), field("seq", \H.seq),
                ]),
        ] + schedulerLayouts()
    }

    /// The scheduler's structs (vcpufreq_sched.h), as the host compiler lays them out.
    static func schedulerLayouts() -> [StructLayout] {
        typealias G = vcpufreq_sched_config
        typealias L = vcpufreq_sched_cluster
        typealias C = vcpufreq_sched_cpu
        typealias N = vcpufreq_sched_counters
        typealias X = vcpufreq_sched_exit
        return [
            StructLayout(
                name: "vcpufreq_sched_config", size: MemoryLayout<G>.size,
                fields: [
                    field("cluster_count", \G.cluster_count), field("slice_us", \G.slice_us),
                    field("boost_us", \G.boost_us), field("default_boost_us", \G.default_boost_us),
                    field("boost_share_permille", \G.boost_share_permille), field("nr_cpus", \G.nr_cpus),
                ]),
            StructLayout(
                name: "vcpufreq_sched_cluster", size: MemoryLayout<L>.size,
                fields: [field("capacity", \L.capacity), field("cpu_count", \L.cpu_count), field("cpus", \L.cpus)]),
            StructLayout(
                name: "vcpufreq_sched_cpu", size: MemoryLayout<C>.size,
                fields: [
                    field("util_sum", \C.util_sum), field("hinted_runtime_ns", \C.hinted_runtime_ns),
                    field("boosted_runtime_ns", \C.boosted_runtime_ns), field("vtime_now", \C.vtime_now),
                    field("hinted_runnable", \C.hinted_runnable), field("cluster", \C.cluster),
                    field("running_boosted", \C.running_boosted), field("hinted_queued", \C.hinted_queued),
                ]),
            StructLayout(
                name: "vcpufreq_sched_counters", size: MemoryLayout<N>.size,
                fields: [
                    field("enqueued_fair", \N.enqueued_fair), field("enqueued_hinted", \N.enqueued_hinted),
                    field("placed_idle", \N.placed_idle), field("placed_busy", \N.placed_busy),
                    field("no_cluster", \N.no_cluster), field("cap_overridden", \N.cap_overridden),
                    field("boosts", \N.boosts), field("boost_preemptions", \N.boost_preemptions),
                    field("boosts_expired", \N.boosts_expired), field("boosts_denied", \N.boosts_denied),
                    field("boosted_runtime_ns", \N.boosted_runtime_ns), field("dispatched_own", \N.dispatched_own),
                    field("dispatched_stolen", \N.dispatched_stolen), field("hint_lookups", \N.hint_lookups),
                    field("slot_reads", \N.slot_reads),
                ]),
            StructLayout(
                name: "vcpufreq_sched_exit", size: MemoryLayout<X>.size,
                fields: [
                    field("kind", \X.kind), field("exit_code", \X.exit_code), field("exit_cpu", \X.exit_cpu),
                    field("pad", \X.pad), field("reason", \X.reason), field("msg", \X.msg),
                ]),
        ]
    }

    /// The constants of vcpufreq_bpf.h, as the host compiler sees them.
    static let headerConstants: [String: Int] = [
        "VCPUFREQ_MAX_TRACKED_THREADS": Int(VCPUFREQ_MAX_TRACKED_THREADS),
        "VCPUFREQ_DELAY_BUCKETS": Int(VCPUFREQ_DELAY_BUCKETS),
        "VCPUFREQ_USERSPACE_EXIT_REASONS": Int(VCPUFREQ_USERSPACE_EXIT_REASONS),
        "VCPUFREQ_MAX_UTIL_HINTS": Int(VCPUFREQ_MAX_UTIL_HINTS),
        "VCPUFREQ_HINT_LATENCY_SENSITIVE": Int(VCPUFREQ_HINT_LATENCY_SENSITIVE),
        "VCPUFREQ_HINT_BOOST": Int(VCPUFREQ_HINT_BOOST),
        "VCPUFREQ_SCHED_MAX_CLUSTERS": Int(VCPUFREQ_SCHED_MAX_CLUSTERS),
        "VCPUFREQ_SCHED_MAX_CPUS": Int(VCPUFREQ_SCHED_MAX_CPUS),
        "VCPUFREQ_SCHED_DEFAULT_SLICE_US": Int(VCPUFREQ_SCHED_DEFAULT_SLICE_US),
        "VCPUFREQ_SCHED_DEFAULT_BOOST_US": Int(VCPUFREQ_SCHED_DEFAULT_BOOST_US),
        "VCPUFREQ_SCHED_DEFAULT_BOOST_SHARE": Int(VCPUFREQ_SCHED_DEFAULT_BOOST_SHARE),
        "VCPUFREQ_SCHED_TIMEOUT_MS": Int(VCPUFREQ_SCHED_TIMEOUT_MS),
        "VCPUFREQ_SCHED_MAX_LEAD_SLICES": Int(VCPUFREQ_SCHED_MAX_LEAD_SLICES),
        "VCPUFREQ_PAGE_SIZE": Int(VCPUFREQ_PAGE_SIZE),
        "VCPUFREQ_MAX_PAGE_VMS": Int(VCPUFREQ_MAX_PAGE_VMS),
        "VCPUFREQ_MAX_CPUS": Int(VCPUFREQ_MAX_CPUS),
    ]
    static let headerPinDirectory = VCPUFREQ_PIN_DIRECTORY
    static let headerUtilHintPinPath = VCPUFREQ_UTIL_HINT_PIN_PATH

    /// Whether the object's BTF has a function (a program, or a kfunc it calls) named `name`.
    static func btfHasFunction(_ object: OpaquePointer, name: String) -> Bool {
        guard let btf = bpf_object__btf(object) else { return false }
        return btf__find_by_name_kind(btf, name, btfKindFunction) > 0
    }

    /// A struct's layout as the BPF compiler emitted it into the object's BTF.
    static func btfLayout(of object: OpaquePointer, structName: String) -> StructLayout? {
        guard let btf = bpf_object__btf(object) else { return nil }
        let id = btf__find_by_name_kind(btf, structName, UInt32(BTF_KIND_STRUCT))
        guard id > 0, let type = btf__type_by_id(btf, UInt32(id)) else { return nil }
        let count = Int(btf_vlen(type))
        guard let members = btf_members(type) else { return nil }
        var fields: [StructLayout.Field] = []
        for index in 0..<count {
            let member = members[index]
            let name = btf__name_by_offset(btf, member.name_off).map { String(cString: $0) } ?? "?"
            let bitOffset = btf_member_bit_offset(type, UInt32(index))
            let size = btf__resolve_size(btf, member.type)
            fields.append(StructLayout.Field(name: name, offset: Int(bitOffset / 8), size: Int(size)))
        }
        return StructLayout(name: structName, size: Int(type.pointee.size), fields: fields)
    }
}

/// libbpf's print callback: format the message and hand it to swift-log.
private let libbpfPrint: libbpf_print_fn_t = { level, format, arguments in
    guard let format, let arguments else { return 0 }
    return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 1024) { buffer -> Int32 in
        guard let base = buffer.baseAddress else { return 0 }
        let written = vsnprintf(base, buffer.count, format, arguments)
        var message = String(cString: base)
        while message.last == "\n" { message.removeLast() }
        LibBPF.deliver(level: level, message: message)
        return written
    }
}

extension LibBPF {
    /// The kernel's id of the map pinned at `path` (bpf_obj_get, then
    /// bpf_obj_get_info_by_fd); nil when nothing, or no map, is pinned there.
    /// Ids are unique among the maps alive, so an id names one map.
    static func pinnedMapID(path: String) -> UInt32? {
        let fd = bpf_obj_get(path)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var info = bpf_map_info()
        var length = UInt32(MemoryLayout<bpf_map_info>.size)
        guard bpf_obj_get_info_by_fd(fd, &info, &length) == 0, info.id != 0 else { return nil }
        return info.id
    }
}
