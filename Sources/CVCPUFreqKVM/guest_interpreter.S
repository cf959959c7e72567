// The guest side of the reference VMM: a tiny interpreter of "guest scripts",
// run as native 64-bit CPL3 code (the only code a PVM host runs without
// emulating each instruction).
//
// The VMM copies the bytes between vcpufreq_guest_code_begin and
// vcpufreq_guest_code_end into guest RAM and starts a vCPU at the first byte.
// The code is position-independent: relative jumps only, no data of its own;
// every address comes in a register or from the script. It lives in a data
// section because it is never executed on the host.
//
// Entry registers (set by the VMM with KVM_SET_REGS):
//   rdi  guest-physical address of the script (an array of 32-byte ops)
//   rsi  guest-physical address of the results area
//   rdx  the DONE address: a 32-bit write there ends the run (hlt does not
//        exist at CPL3; the VMM recognises this MMIO exit and stops)
//   rcx  capacity: the most ops the interpreter will execute
//   r8   this vCPU's index (what the publish op writes to a doorbell)
//   rsp  top of a small stack (unused today; set for safety)
// Guest virtual addresses equal guest-physical ones (identity page tables).
//
// Op (32 bytes, little-endian):
//   +0  u32 opcode
//   +4  u32 count     repetitions (meaning per op)
//   +8  u64 addr      guest address (or port number)
//   +16 u64 value
//   +24 u64 aux
//
// Results area:
//   +0  u64 completed  ops finished so far (updated after each op, so after a
//                      crash the VMM knows which op faulted)
//   +8  u32 status     why the interpreter stopped (STATUS_*)
//   +12 u32 reserved
//   +16 then one 16-byte record per op: u64 value, u64 aux
//
// Opcodes (the Swift mirror is GuestOpcode in VCPUFreqKVM):
//   0 END        write status END to DONE; ends the run. No result record.
//   1 READ       count times: load `aux` bytes (1, 2, 4, 8) at addr.
//                value = last value read (zero-extended), aux = 64-bit
//                wrapping sum of all values read (a checksum).
//   2 WRITE      count times: store the low `aux` bytes of value at addr
//                (MMIO: exits; RAM: no exit; ioeventfd: completed in KVM).
//                value = count, aux = 0.
//   3 SPIN       busy loop of `value` iterations, no memory access, no exits.
//                value = iterations, aux = 0. The VMM calibrates ns/iteration.
//   4 TICK       count times: 32-bit load at addr, then spin `value`
//                iterations ("cur_perf read on every scheduler tick").
//                value = last value read, aux = checksum as READ.
//   5 PUBLISH    the shared-page guest protocol, count times, on the 64-byte
//                slot at addr (SharedPageABI v1):
//                  seq = slot.seq & ~1; slot.seq = seq+1 (odd: writing);
//                  slot.flags, slot.util, slot.perf = ...;
//                  slot.seq = seq+2, or 2 if that wrapped to 0 (even: complete);
//                  mfence (the stores must be visible before the kick flag is read);
//                  if (slot.host_flags & KICK) 32-bit write of r8 to the doorbell.
//                value low 32 = util, high 32 = perf (kHz); aux low 32 = guest
//                flags, high 32 = doorbell address. Every publish is a change:
//                odd iterations publish util-1 and perf-1 (1 when the value is 0).
//                result value = doorbell writes made, aux = last seq stored.
//   6 WAIT32     spin (with pause) until the 32-bit word at addr equals the
//                low 32 bits of value, at most `aux` failed checks.
//                value = failed checks, aux = 1 if it gave up (timeout), else 0.
//   7 PORT_READ  as READ but with `in` from port addr (aux = 1, 2 or 4).
//   8 PORT_WRITE as WRITE but with `out` to port addr (aux = 1, 2 or 4).
//   9 PERFTABLE  the upstream virtual-cpufreq driver building one CPU's
//                table (virt_cpufreq_build_freq_table): addr = that CPU's
//                register window, value = a RAM buffer, aux = most entries.
//                  len = load32(window.perftbl_len)
//                  if len == 0 or len > aux: stop (the driver refuses to probe)
//                  for i in 0..<len: store32(window.perftbl_sel, i);
//                                    buffer[i] = load32(window.perftbl_rd)
//                The length comes from the device, not from the script, as in
//                the driver. value = len, aux = wrapping sum of the entries
//                (0 when refused).
//  10 TIMESTAMP  value = the time stamp counter (rdtsc), aux = 0. Deltas of
//                one vCPU's TSC are valid durations; the VMM converts ticks to
//                ns by calibrating them against its own clock.
//  11 REQUESTS   count requests, each timed and optionally awaited, driven by
//                a parameter block in guest RAM at addr (RequestLoopParameters
//                in VCPUFreqKVM; all fields u64 unless split in two u32):
//                  +0  kind: 0 = STORE (a 32-bit store of the value at target:
//                      a register such as set_perf), 1 = PUBLISH (the shared
//                      page protocol of PUBLISH on the slot at target, the
//                      value stored at slot + field, the flags in slot.flags,
//                      the doorbell rung when the host asks for kicks)
//                  +8  target   +16 doorbell   +24 field (slot offset)
//                  +32 value A (low 32) | value B (high 32)
//                  +40 flags A | flags B          (PUBLISH only)
//                  +48 watch: address of a 32-bit word to wait on, 0 = none
//                  +56 mask (low 32): bits of the watched word compared
//                  +64 expected A | expected B: (word & mask) that means
//                      "this request is applied"
//                  +72 timeout: TSC ticks after which a wait gives up
//                  +80 samples: address of an array of count pairs of u64,
//                      0 = no time stamps
//                  +88 gap mask: after each request, spin (rng & mask)
//                      iterations: guest work of a random length between
//                      requests, so requests fall at random phases of a
//                      host poll interval
//                  +96 rng: xorshift64 state (nonzero), updated in place
//                Even iterations send A, odd ones B. Per iteration, when
//                samples is set: pair.0 = ticks from the start of the request
//                to the store (or kick) done, pair.1 = ticks until the watched
//                word showed the expected value (= pair.0 without a watch;
//                all ones when the wait gave up).
//                value = doorbell writes made, aux = waits that gave up.
//  12 WORKLOAD   count jobs of a guest workload, run the way a Linux guest
//                with a DVFS driver runs them, driven by a parameter block in
//                guest RAM at addr (WorkloadParameters in VCPUFreqKVM; every
//                field a u64 unless said otherwise):
//                  +0 jobs (array of count 32-byte jobs)  +8 records (array of
//                  count 32-byte records, 0 = none)  +16 kind: 0 = no device
//                  (nothing sent), 1 = STORE of the request to target
//                  (set_perf), 2 = PUBLISH in the shared-page slot at target
//                  (perf field and flags, doorbell rung when asked),
//                  3 = PUBLISH_UTIL: the estimate itself in the slot's util
//                  field (and flags), at every update: no rate limit, no
//                  change test (a page the host's BPF programs read in place)
//                  +24 target  +32 doorbell  +40 cur_perf address read on every
//                  tick (0 = none: invariance scale stays 1024)  +48 idle page
//                  (0 = idle by spinning)  +56 tick period  +64 PELT period
//                  +72 rate limit (all three in TSC ticks)  +80 ns per tick,
//                  32.32 fixed point  +88 idles shorter than this (ticks) are
//                  spun, not stored  +96 max perf (kHz)  +104 table length
//                  (1..16)  +112 the table, 16 u32 kHz ascending
//                  +176 buffer of the memory loop  +184 its size - 1 (2^n - 1)
//                  +192 slot flags: low 32 for normal jobs, high 32 for
//                  interactive ones  +200 decay per PELT period, 16.16 (y)
//                  State, set up by the VMM and updated in place: +208 util
//                  (16.16 of 0..1024)  +216 ticks into the PELT period
//                  +224 running ticks in it (scaled by cur_perf / max)
//                  +232 TSC of the last PELT update (0 = now)  +240 TSC of the
//                  last request (0 = never)  +248 perf last requested
//                  +256 flags last published | 1 << 32 once published
//                  +264 invariance scale (0..1024)  +272 memory loop's
//                  xorshift64 state  +280 TSC of the next tick  +288 requests
//                  sent  +296 kicks  +304 idle stores  +312 ticks
//                  +320 cur_perf last read  +328 TSC of the op's start
//                  +336 flags of the job now running
//                Job: +0 u32 flags (1 = interactive: its slot flags, 2 =
//                release counted from the op's start, else from the previous
//                job's end)  +8 release (ticks)  +16 compute (SPIN iterations)
//                  +24 memory iterations (a read-modify-write of a pseudo-random
//                  cache line of the buffer each).
//                Per job: if its release lies ahead, PELT update (running) and
//                schedutil update (dequeue), then idle until the release (an
//                idle store of the remaining ns, again while it is ahead; the
//                rest spun); PELT update (idle), the job's slot flags become
//                the running flags (+336, initially the normal flags: they
//                stay through the idle that follows, so the host's latency
//                hint holds across a run of interactive jobs, as a driver
//                flagging its running tasks would leave it), schedutil
//                update (enqueue);
//                the work in chunks, with a tick whenever the tick period has
//                passed (cur_perf read, PELT update, schedutil update); PELT
//                update (running). Record: +0 release TSC, +8 start TSC (running
//                again after the idle), +16 end TSC, +24 u32 util at the end,
//                +28 u32 requests sent so far.
//                PELT: time is cut into periods; a closed period gives
//                util = (util * y + running share * 1024 * (1 - y)), the
//                current period counts when it closes (at most 1024 periods
//                are decayed at once: y^1024 is 0 in 16 bits).
//                schedutil: perf = 1.25 * max * util / 1024 (at most max),
//                the lowest table entry at or above it; sent when it differs
//                from the last perf sent and the rate limit has passed since
//                the last request — or at once, when the slot flags of the
//                running job differ from those last published (PUBLISH only).
//                PUBLISH_UTIL publishes util (0..1024) at every update.
//                value = requests sent, aux = kicks (the block has the rest).
// An unknown opcode or width stops the interpreter with a status saying so.

        .set OP_CODE, 0
        .set OP_COUNT, 4
        .set OP_ADDR, 8
        .set OP_VALUE, 16
        .set OP_AUX, 24
        .set OP_SIZE, 32

        .set RES_COMPLETED, 0
        .set RES_STATUS, 8
        .set RES_HEADER_SIZE, 16
        .set RES_VALUE, 0
        .set RES_AUX, 8
        .set RES_SIZE, 16

        .set OPC_END, 0
        .set OPC_READ, 1
        .set OPC_WRITE, 2
        .set OPC_SPIN, 3
        .set OPC_TICK, 4
        .set OPC_PUBLISH, 5
        .set OPC_WAIT32, 6
        .set OPC_PORT_READ, 7
        .set OPC_PORT_WRITE, 8
        .set OPC_PERFTABLE, 9
        .set OPC_TIMESTAMP, 10
        .set OPC_REQUESTS, 11
        .set OPC_WORKLOAD, 12

        // WORKLOAD parameter block (WorkloadParameters).
        .set WL_JOBS, 0
        .set WL_RECORDS, 8
        .set WL_KIND, 16
        .set WL_TARGET, 24
        .set WL_DOORBELL, 32
        .set WL_PERF_READ, 40
        .set WL_IDLE, 48
        .set WL_TICK, 56
        .set WL_PERIOD, 64
        .set WL_RATE_LIMIT, 72
        .set WL_NS_MULT, 80
        .set WL_IDLE_MIN, 88
        .set WL_MAX_PERF, 96
        .set WL_TABLE_LEN, 104
        .set WL_TABLE, 112
        .set WL_BUFFER, 176
        .set WL_BUFFER_MASK, 184
        .set WL_FLAGS, 192
        .set WL_DECAY, 200
        .set WL_UTIL, 208
        .set WL_PERIOD_POS, 216
        .set WL_PERIOD_RUN, 224
        .set WL_LAST_UPDATE, 232
        .set WL_LAST_REQUEST, 240
        .set WL_LAST_PERF, 248
        .set WL_LAST_FLAGS, 256
        .set WL_SCALE, 264
        .set WL_RNG, 272
        .set WL_NEXT_TICK, 280
        .set WL_REQUESTS, 288
        .set WL_KICKS, 296
        .set WL_IDLES, 304
        .set WL_TICKS, 312
        .set WL_PERF_LAST, 320
        .set WL_START, 328
        .set WL_WANT_FLAGS, 336
        .set WL_KIND_STORE, 1
        .set WL_KIND_PUBLISH, 2
        .set WL_KIND_PUBLISH_UTIL, 3
        .set WL_JOB_INTERACTIVE, 1
        .set WL_JOB_ABSOLUTE, 2
        // Work between two looks at the clock: ~1-4 µs of SPIN, a few µs of memory.
        .set WL_SPIN_CHUNK, 4096
        .set WL_MEMORY_CHUNK, 256

        // REQUESTS parameter block (RequestLoopParameters).
        .set RQ_KIND, 0
        .set RQ_TARGET, 8
        .set RQ_DOORBELL, 16
        .set RQ_FIELD, 24
        .set RQ_VALUES, 32
        .set RQ_FLAGS, 40
        .set RQ_WATCH, 48
        .set RQ_MASK, 56
        .set RQ_EXPECTED, 64
        .set RQ_TIMEOUT, 72
        .set RQ_SAMPLES, 80
        .set RQ_GAP_MASK, 88
        .set RQ_RNG, 96
        .set RQ_KIND_PUBLISH, 1

        .set STATUS_END, 1
        .set STATUS_BAD_OPCODE, 2
        .set STATUS_NO_END, 3
        .set STATUS_BAD_WIDTH, 4

        // SharedPageABI.Slot offsets and HostSlotFlags.kick.
        .set SLOT_SEQ, 0x00
        .set SLOT_FLAGS, 0x04
        .set SLOT_UTIL, 0x08
        .set SLOT_PERF, 0x0c
        .set SLOT_HOST_FLAGS, 0x2c
        .set HOST_FLAG_KICK, 1

        // UpstreamABI.Register offsets within a CPU's window.
        .set REG_PERFTBL_LEN, 0x08
        .set REG_PERFTBL_SEL, 0x0c
        .set REG_PERFTBL_RD, 0x10

#if defined(__x86_64__)

        .section .rodata.vcpufreq_guest, "a"
        .balign 64
        .globl vcpufreq_guest_code_begin
        .globl vcpufreq_guest_code_end

// Interpreter state, kept for the whole run:
//   r12 current op    r13 current result record    r14 ops left (capacity)
//   r15 DONE address  rbx results header           rbp vCPU index
// Each op leaves its result in r9 (value) and r10 (aux) and jumps to op_done.
vcpufreq_guest_code_begin:
        movq    %rdi, %r12
        leaq    RES_HEADER_SIZE(%rsi), %r13
        movq    %rsi, %rbx
        movq    %rcx, %r14
        movq    %rdx, %r15
        movq    %r8, %rbp
        movq    $0, RES_COMPLETED(%rbx)
        movl    $0, RES_STATUS(%rbx)

next_op:
        testq   %r14, %r14
        jz      no_end
        movl    OP_CODE(%r12), %eax
        cmpl    $OPC_END, %eax
        je      op_end
        cmpl    $OPC_READ, %eax
        je      op_read
        cmpl    $OPC_WRITE, %eax
        je      op_write
        cmpl    $OPC_SPIN, %eax
        je      op_spin
        cmpl    $OPC_TICK, %eax
        je      op_tick
        cmpl    $OPC_PUBLISH, %eax
        je      op_publish
        cmpl    $OPC_WAIT32, %eax
        je      op_wait32
        cmpl    $OPC_PORT_READ, %eax
        je      op_port_read
        cmpl    $OPC_PORT_WRITE, %eax
        je      op_port_write
        cmpl    $OPC_PERFTABLE, %eax
        je      op_perftable
        cmpl    $OPC_TIMESTAMP, %eax
        je      op_timestamp
        cmpl    $OPC_REQUESTS, %eax
        je      op_requests
        cmpl    $OPC_WORKLOAD, %eax
        je      op_workload
        movl    $STATUS_BAD_OPCODE, %eax
        jmp     finish

op_done:
        movq    %r9, RES_VALUE(%r13)
        movq    %r10, RES_AUX(%r13)
        addq    $OP_SIZE, %r12
        addq    $RES_SIZE, %r13
        decq    %r14
        incq    RES_COMPLETED(%rbx)
        jmp     next_op

no_end:
        movl    $STATUS_NO_END, %eax
        jmp     finish
bad_width:
        movl    $STATUS_BAD_WIDTH, %eax
        jmp     finish
op_end:
        movl    $STATUS_END, %eax
// eax = status. The DONE write is an MMIO exit the VMM never resumes.
finish:
        movl    %eax, RES_STATUS(%rbx)
        movl    %eax, (%r15)
1:      jmp     1b

// ---- READ: rcx = count, rdi = addr, rdx = width ----
op_read:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdi
        movq    OP_AUX(%r12), %rdx
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
        cmpq    $4, %rdx
        je      2f
        cmpq    $1, %rdx
        je      1f
        cmpq    $2, %rdx
        je      3f
        cmpq    $8, %rdx
        je      4f
        jmp     bad_width
1:      testq   %rcx, %rcx
        jz      op_done
11:     movzbl  (%rdi), %r9d
        addq    %r9, %r10
        decq    %rcx
        jnz     11b
        jmp     op_done
2:      testq   %rcx, %rcx
        jz      op_done
21:     movl    (%rdi), %r9d
        addq    %r9, %r10
        decq    %rcx
        jnz     21b
        jmp     op_done
3:      testq   %rcx, %rcx
        jz      op_done
31:     movzwl  (%rdi), %r9d
        addq    %r9, %r10
        decq    %rcx
        jnz     31b
        jmp     op_done
4:      testq   %rcx, %rcx
        jz      op_done
41:     movq    (%rdi), %r9
        addq    %r9, %r10
        decq    %rcx
        jnz     41b
        jmp     op_done

// ---- WRITE: rcx = count, rdi = addr, rax = value, rdx = width ----
op_write:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdi
        movq    OP_VALUE(%r12), %rax
        movq    OP_AUX(%r12), %rdx
        movq    %rcx, %r9
        xorl    %r10d, %r10d
        cmpq    $4, %rdx
        je      2f
        cmpq    $1, %rdx
        je      1f
        cmpq    $2, %rdx
        je      3f
        cmpq    $8, %rdx
        je      4f
        jmp     bad_width
1:      testq   %rcx, %rcx
        jz      op_done
11:     movb    %al, (%rdi)
        decq    %rcx
        jnz     11b
        jmp     op_done
2:      testq   %rcx, %rcx
        jz      op_done
21:     movl    %eax, (%rdi)
        decq    %rcx
        jnz     21b
        jmp     op_done
3:      testq   %rcx, %rcx
        jz      op_done
31:     movw    %ax, (%rdi)
        decq    %rcx
        jnz     31b
        jmp     op_done
4:      testq   %rcx, %rcx
        jz      op_done
41:     movq    %rax, (%rdi)
        decq    %rcx
        jnz     41b
        jmp     op_done

// ---- SPIN: rcx = iterations ----
op_spin:
        movq    OP_VALUE(%r12), %rcx
        movq    %rcx, %r9
        xorl    %r10d, %r10d
        testq   %rcx, %rcx
        jz      op_done
1:      decq    %rcx
        jnz     1b
        jmp     op_done

// ---- TICK: rcx = ticks, rdi = addr, rsi = spin per tick ----
op_tick:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdi
        movq    OP_VALUE(%r12), %rsi
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
        testq   %rcx, %rcx
        jz      op_done
1:      movl    (%rdi), %r9d
        addq    %r9, %r10
        movq    %rsi, %rax
        testq   %rax, %rax
        jz      3f
2:      decq    %rax
        jnz     2b
3:      decq    %rcx
        jnz     1b
        jmp     op_done

// ---- PUBLISH: rdi = slot, ecx = count, r8 = util | perf << 32 (current),
//      r11 = what to XOR into r8 to alternate, r9 = doorbell writes, r10 = seq ----
op_publish:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdi
        movq    OP_VALUE(%r12), %r8
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
        // r11 low 32 = util ^ alternate(util)
        movl    %r8d, %eax
        leal    -1(%rax), %edx
        movl    $1, %esi
        testl   %eax, %eax
        cmovzl  %esi, %edx
        xorl    %eax, %edx
        movl    %edx, %r11d
        // r11 high 32 = perf ^ alternate(perf)
        movq    %r8, %rax
        shrq    $32, %rax
        leal    -1(%rax), %edx
        testl   %eax, %eax
        cmovzl  %esi, %edx
        xorl    %eax, %edx
        shlq    $32, %rdx
        orq     %rdx, %r11
        testl   %ecx, %ecx
        jz      op_done
1:      movl    SLOT_SEQ(%rdi), %eax
        andl    $~1, %eax                    // a guest that died mid-update left it odd
        leal    1(%rax), %edx
        movl    %edx, SLOT_SEQ(%rdi)         // odd: the slot is being written
        movl    OP_AUX(%r12), %edx
        movl    %edx, SLOT_FLAGS(%rdi)
        movl    %r8d, SLOT_UTIL(%rdi)
        movq    %r8, %rdx
        shrq    $32, %rdx
        movl    %edx, SLOT_PERF(%rdi)
        addl    $2, %eax
        jnz     3f
        movl    $2, %eax                     // 0 means "never published": skipped on wrap-around
3:      movl    %eax, SLOT_SEQ(%rdi)         // even again: the request is complete
        movl    %eax, %r10d
        // x86 orders stores with stores, but a later load may pass an earlier
        // store: without the fence the host could clear KICK, miss our update
        // and we could still read the stale KICK=0.
        mfence
        testl   $HOST_FLAG_KICK, SLOT_HOST_FLAGS(%rdi)
        jz      2f
        movl    OP_AUX+4(%r12), %edx         // doorbell address (zero-extended)
        movl    %ebp, (%rdx)                 // the value is the vCPU index
        incq    %r9
2:      xorq    %r11, %r8
        decl    %ecx
        jnz     1b
        jmp     op_done

// ---- WAIT32: rdi = addr, eax = expected, rcx = most failed checks ----
op_wait32:
        movq    OP_ADDR(%r12), %rdi
        movl    OP_VALUE(%r12), %eax
        movq    OP_AUX(%r12), %rcx
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
1:      cmpl    %eax, (%rdi)
        je      op_done
        cmpq    %rcx, %r9
        jae     2f
        incq    %r9
        pause
        jmp     1b
2:      movl    $1, %r10d
        jmp     op_done

// ---- PORT_READ: rcx = count, dx = port, rsi = width ----
op_port_read:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdx
        movq    OP_AUX(%r12), %rsi
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
        cmpq    $1, %rsi
        je      1f
        cmpq    $2, %rsi
        je      2f
        cmpq    $4, %rsi
        je      4f
        jmp     bad_width
1:      testq   %rcx, %rcx
        jz      op_done
11:     inb     %dx, %al
        movzbl  %al, %r9d
        addq    %r9, %r10
        decq    %rcx
        jnz     11b
        jmp     op_done
2:      testq   %rcx, %rcx
        jz      op_done
21:     inw     %dx, %ax
        movzwl  %ax, %r9d
        addq    %r9, %r10
        decq    %rcx
        jnz     21b
        jmp     op_done
4:      testq   %rcx, %rcx
        jz      op_done
41:     inl     %dx, %eax
        movl    %eax, %r9d
        addq    %r9, %r10
        decq    %rcx
        jnz     41b
        jmp     op_done

// ---- PORT_WRITE: rcx = count, dx = port, rax = value, rsi = width ----
op_port_write:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdx
        movq    OP_VALUE(%r12), %rax
        movq    OP_AUX(%r12), %rsi
        movq    %rcx, %r9
        xorl    %r10d, %r10d
        cmpq    $1, %rsi
        je      1f
        cmpq    $2, %rsi
        je      2f
        cmpq    $4, %rsi
        je      4f
        jmp     bad_width
1:      testq   %rcx, %rcx
        jz      op_done
11:     outb    %al, %dx
        decq    %rcx
        jnz     11b
        jmp     op_done
2:      testq   %rcx, %rcx
        jz      op_done
21:     outw    %ax, %dx
        decq    %rcx
        jnz     21b
        jmp     op_done
4:      testq   %rcx, %rcx
        jz      op_done
41:     outl    %eax, %dx
        decq    %rcx
        jnz     41b
        jmp     op_done

// ---- PERFTABLE: rdi = window, rsi = buffer, rdx = most entries,
//      r9 = len, ecx = index, r10 = sum ----
op_perftable:
        movq    OP_ADDR(%r12), %rdi
        movq    OP_VALUE(%r12), %rsi
        movq    OP_AUX(%r12), %rdx
        xorl    %r10d, %r10d
        movl    REG_PERFTBL_LEN(%rdi), %r9d
        testl   %r9d, %r9d
        jz      op_done                      // 0 entries: the driver gives up
        cmpq    %rdx, %r9
        ja      op_done                      // too many: the driver gives up
        xorl    %ecx, %ecx
1:      movl    %ecx, REG_PERFTBL_SEL(%rdi)  // select entry i ...
        movl    REG_PERFTBL_RD(%rdi), %eax   // ... and read it back
        movl    %eax, (%rsi,%rcx,4)
        addq    %rax, %r10
        incl    %ecx
        cmpl    %r9d, %ecx
        jb      1b
        jmp     op_done

// ---- TIMESTAMP: r9 = TSC ----
op_timestamp:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, %r9
        xorl    %r10d, %r10d
        jmp     op_done

// ---- REQUESTS: rdi = parameter block, ecx = requests left, r11 = index,
//      r8 = next sample pair (0: none), r9 = doorbell writes, r10 = waits
//      abandoned, rsi = start TSC, rbx = 0 for A / 1 for B, r12 and r13
//      scratch (rbx, r12, r13 saved on the stack, restored before op_done) ----
op_requests:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdi
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        xorl    %r9d, %r9d
        xorl    %r10d, %r10d
        xorl    %r11d, %r11d
        movq    RQ_SAMPLES(%rdi), %r8
        testl   %ecx, %ecx
        jz      19f
1:      movl    %r11d, %ebx
        andl    $1, %ebx                     // 0: request A, 1: request B
        // The start stamp, only when something is timed: an untimed loop
        // measures the bare request (a suppressed publish is ~15 ns).
        movq    RQ_WATCH(%rdi), %rax
        orq     %r8, %rax
        jz      2f
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, %rsi
2:      movl    RQ_VALUES(%rdi,%rbx,4), %r13d
        movq    RQ_TARGET(%rdi), %rdx
        cmpq    $RQ_KIND_PUBLISH, RQ_KIND(%rdi)
        je      3f
        movl    %r13d, (%rdx)                // STORE: the register write
        jmp     5f
3:      movl    SLOT_SEQ(%rdx), %eax         // PUBLISH, as the PUBLISH op
        andl    $~1, %eax
        leal    1(%rax), %r12d
        movl    %r12d, SLOT_SEQ(%rdx)        // odd: being written
        movl    RQ_FLAGS(%rdi,%rbx,4), %r12d
        movl    %r12d, SLOT_FLAGS(%rdx)
        movq    RQ_FIELD(%rdi), %r12
        movl    %r13d, (%rdx,%r12)
        addl    $2, %eax
        jnz     4f
        movl    $2, %eax                     // 0 means "never published"
4:      movl    %eax, SLOT_SEQ(%rdx)         // even: complete
        mfence                               // see PUBLISH
        testl   $HOST_FLAG_KICK, SLOT_HOST_FLAGS(%rdx)
        jz      5f
        movq    RQ_DOORBELL(%rdi), %rdx
        movl    %ebp, (%rdx)
        incq    %r9
5:      testq   %r8, %r8                     // the request is out
        jz      6f
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        subq    %rsi, %rax
        movq    %rax, (%r8)                  // pair.0: the request's own cost
        movq    %rax, 8(%r8)                 // pair.1 unless a wait follows
6:      movq    RQ_WATCH(%rdi), %r12
        testq   %r12, %r12
        jz      9f
        movl    RQ_EXPECTED(%rdi,%rbx,4), %r13d
7:      movl    (%r12), %eax
        andl    RQ_MASK(%rdi), %eax
        cmpl    %r13d, %eax
        je      8f
        pause
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        subq    %rsi, %rax
        cmpq    RQ_TIMEOUT(%rdi), %rax
        jbe     7b
        incq    %r10                         // gave up
        testq   %r8, %r8
        jz      9f
        movq    $-1, 8(%r8)
        jmp     9f
8:      testq   %r8, %r8                     // applied
        jz      9f
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        subq    %rsi, %rax
        movq    %rax, 8(%r8)                 // pair.1: until applied
9:      testq   %r8, %r8
        jz      10f
        addq    $16, %r8
10:     movq    RQ_GAP_MASK(%rdi), %rdx      // guest work of random length
        testq   %rdx, %rdx
        jz      12f
        movq    RQ_RNG(%rdi), %rax           // xorshift64 (13, 7, 17)
        movq    %rax, %r12
        shlq    $13, %r12
        xorq    %r12, %rax
        movq    %rax, %r12
        shrq    $7, %r12
        xorq    %r12, %rax
        movq    %rax, %r12
        shlq    $17, %r12
        xorq    %r12, %rax
        movq    %rax, RQ_RNG(%rdi)
        andq    %rdx, %rax
        jz      12f
11:     decq    %rax
        jnz     11b
12:     incq    %r11
        decl    %ecx
        jnz     1b
19:     popq    %r13
        popq    %r12
        popq    %rbx
        jmp     op_done

// ---- WORKLOAD: rdi = parameter block, r12 = job, r13 = record (0: none),
//      r14 = jobs left, r15 = previous job's end, rbx = this job's start;
//      locals: 0(rsp) compute left, 8(rsp) memory left, 16(rsp) release.
//      The interpreter's rbx, r12-r15 are saved on the stack; rbp (the vCPU
//      index) is left alone: a kick writes it. ----
op_workload:
        movl    OP_COUNT(%r12), %ecx
        movq    OP_ADDR(%r12), %rdi
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $32, %rsp
        movq    %rcx, %r14
        movq    WL_JOBS(%rdi), %r12
        movq    WL_RECORDS(%rdi), %r13
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, WL_START(%rdi)
        cmpq    $0, WL_LAST_UPDATE(%rdi)
        jne     1f
        movq    %rax, WL_LAST_UPDATE(%rdi)
1:      movq    %rax, %r15
        movq    %rax, %rdx
        addq    WL_TICK(%rdi), %rdx
        movq    %rdx, WL_NEXT_TICK(%rdi)
        testq   %r14, %r14
        jz      wl_exit
wl_job:
        movq    8(%r12), %rax                // release: from the start, or after the last job
        testl   $WL_JOB_ABSOLUTE, (%r12)
        jz      2f
        addq    WL_START(%rdi), %rax
        jmp     3f
2:      addq    %r15, %rax
3:      movq    %rax, 16(%rsp)
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        cmpq    16(%rsp), %rax
        jae     wl_woke                      // due already: no idle
        movl    $1, %esi                     // going idle: the running time so far,
        call    wl_pelt
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        call    wl_sugov                     // and schedutil's update on dequeue
wl_idle:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    16(%rsp), %rdx
        cmpq    %rdx, %rax
        jae     wl_woke
        subq    %rax, %rdx                   // ticks until the release
        cmpq    $0, WL_IDLE(%rdi)
        je      5f
        cmpq    WL_IDLE_MIN(%rdi), %rdx
        jb      5f
        movq    %rdx, %rax                   // ns = ticks * mult >> 32
        mulq    WL_NS_MULT(%rdi)
        shrdq   $32, %rdx, %rax
        movq    WL_IDLE(%rdi), %rdx
        movq    %rax, (%rdx)                 // the idle store: the VMM sleeps
        incq    WL_IDLES(%rdi)
        jmp     wl_idle
5:      pause                                // a short idle is polled
        jmp     wl_idle
wl_woke:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, %rbx                   // running again
        xorl    %esi, %esi                   // the idle time
        call    wl_pelt
        movl    WL_FLAGS(%rdi), %edx         // the slot flags of the job now running:
        testl   $WL_JOB_INTERACTIVE, (%r12)  // they stay through the idle after it,
        jz      4f                           // until a job with other flags runs
        movl    WL_FLAGS+4(%rdi), %edx
4:      movq    %rdx, WL_WANT_FLAGS(%rdi)
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        call    wl_sugov                     // schedutil's update on enqueue
        movq    16(%r12), %rax
        movq    %rax, 0(%rsp)
        movq    24(%r12), %rax
        movq    %rax, 8(%rsp)
wl_compute:
        movq    0(%rsp), %rcx
        testq   %rcx, %rcx
        jz      wl_memory
        movl    $WL_SPIN_CHUNK, %eax
        cmpq    %rax, %rcx
        cmovbq  %rcx, %rax
        subq    %rax, 0(%rsp)
6:      decq    %rax
        jnz     6b
        call    wl_tick
        jmp     wl_compute
wl_memory:
        movq    8(%rsp), %rcx
        testq   %rcx, %rcx
        jz      wl_end
        movl    $WL_MEMORY_CHUNK, %eax
        cmpq    %rax, %rcx
        cmovbq  %rcx, %rax
        subq    %rax, 8(%rsp)
        movq    WL_RNG(%rdi), %r8
        movq    WL_BUFFER(%rdi), %r9
        movq    WL_BUFFER_MASK(%rdi), %r10
        andq    $~63, %r10                   // whole cache lines
7:      movq    %r8, %r11                    // xorshift64 (13, 7, 17)
        shlq    $13, %r11
        xorq    %r11, %r8
        movq    %r8, %r11
        shrq    $7, %r11
        xorq    %r11, %r8
        movq    %r8, %r11
        shlq    $17, %r11
        xorq    %r11, %r8
        movq    %r8, %r11
        andq    %r10, %r11
        incq    (%r9,%r11)                   // read-modify-write of that line
        decq    %rax
        jnz     7b
        movq    %r8, WL_RNG(%rdi)
        call    wl_tick
        jmp     wl_memory
wl_end:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        movq    %rax, %r15
        movl    $1, %esi                     // the running time up to the end
        call    wl_pelt
        testq   %r13, %r13
        jz      8f
        movq    16(%rsp), %rax
        movq    %rax, 0(%r13)
        movq    %rbx, 8(%r13)
        movq    %r15, 16(%r13)
        movq    WL_UTIL(%rdi), %rax
        shrq    $16, %rax
        movl    %eax, 24(%r13)
        movq    WL_REQUESTS(%rdi), %rax
        movl    %eax, 28(%r13)
        addq    $32, %r13
8:      addq    $32, %r12
        decq    %r14
        jnz     wl_job
wl_exit:
        movq    WL_REQUESTS(%rdi), %r9
        movq    WL_KICKS(%rdi), %r10
        addq    $32, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        jmp     op_done

// wl_tick: the scheduler tick, when its period has passed: cur_perf read
// (frequency invariance), PELT update (running), schedutil update.
// rdi = block. Clobbers rax, rcx, rdx, rsi, r8-r11.
wl_tick:
        rdtsc
        shlq    $32, %rdx
        orq     %rdx, %rax
        cmpq    WL_NEXT_TICK(%rdi), %rax
        jb      9f
        movq    %rax, %rdx
        addq    WL_TICK(%rdi), %rdx
        movq    %rdx, WL_NEXT_TICK(%rdi)
        incq    WL_TICKS(%rdi)
        pushq   %rax
        movq    WL_PERF_READ(%rdi), %rdx
        testq   %rdx, %rdx
        jz      1f
        movl    (%rdx), %eax                 // cur_perf: a mirror load or an MMIO exit
        movq    %rax, WL_PERF_LAST(%rdi)
        shlq    $10, %rax                    // scale = min(cur * 1024 / max, 1024)
        xorl    %edx, %edx
        divq    WL_MAX_PERF(%rdi)
        cmpq    $1024, %rax
        jbe     2f
        movl    $1024, %eax
2:      movq    %rax, WL_SCALE(%rdi)
1:      movq    (%rsp), %rax
        movl    $1, %esi
        call    wl_pelt
        popq    %rax
        call    wl_sugov
9:      ret

// wl_pelt: rax = now, esi = 1 if the vCPU ran since the last update.
// rdi = block. Clobbers rax, rcx, rdx, r8-r11.
wl_pelt:
        movq    %rax, %r8
        subq    WL_LAST_UPDATE(%rdi), %rax
        jae     1f
        xorl    %eax, %eax                   // a clock going back counts as nothing
1:      movq    %r8, WL_LAST_UPDATE(%rdi)
        movq    WL_PERIOD(%rdi), %rcx
        movq    %rcx, %rdx
        shlq    $10, %rdx
        cmpq    %rdx, %rax
        cmovaq  %rdx, %rax                   // at most 1024 periods
        movq    %rax, %r8
2:      testq   %r8, %r8
        jz      9f
        movq    %rcx, %r9
        subq    WL_PERIOD_POS(%rdi), %r9     // room left in this period
        cmpq    %r8, %r9
        cmovaq  %r8, %r9
        subq    %r9, %r8
        addq    %r9, WL_PERIOD_POS(%rdi)
        testl   %esi, %esi
        jz      3f
        movq    %r9, %rax
        imulq   WL_SCALE(%rdi), %rax
        shrq    $10, %rax
        addq    %rax, WL_PERIOD_RUN(%rdi)
3:      cmpq    %rcx, WL_PERIOD_POS(%rdi)
        jb      2b
        movq    WL_PERIOD_RUN(%rdi), %rax    // the period closes:
        shlq    $26, %rax                    // share = run * (1024 << 16) / period
        xorl    %edx, %edx
        divq    %rcx
        movq    $65536, %r11
        subq    WL_DECAY(%rdi), %r11
        imulq   %r11, %rax                   // share * (1 - y)
        movq    %rax, %r10
        movq    WL_UTIL(%rdi), %rax
        imulq   WL_DECAY(%rdi), %rax         // + util * y
        addq    %r10, %rax
        shrq    $16, %rax
        movq    %rax, WL_UTIL(%rdi)
        movq    $0, WL_PERIOD_POS(%rdi)
        movq    $0, WL_PERIOD_RUN(%rdi)
        jmp     2b
9:      ret

// wl_sugov: rax = now. schedutil's frequency choice and the request the
// driver sends through the block's path. rdi = block, rbp = vCPU index.
// Clobbers rax, rcx, rdx, r8-r11.
wl_sugov:
        cmpq    $0, WL_KIND(%rdi)
        je      9f                           // no device: nothing to ask
        movq    %rax, %r8
        movq    WL_UTIL(%rdi), %rax          // perf = util * max * 5/4 / 1024 (util is 16.16)
        imulq   WL_MAX_PERF(%rdi), %rax
        leaq    (%rax,%rax,4), %rax
        shrq    $28, %rax
        cmpq    WL_MAX_PERF(%rdi), %rax
        cmovaq  WL_MAX_PERF(%rdi), %rax
        movq    WL_TABLE_LEN(%rdi), %rcx     // the lowest entry at or above it
        movq    %rax, %r10
        testq   %rcx, %rcx
        jz      4f
        xorl    %r9d, %r9d
1:      movl    WL_TABLE(%rdi,%r9,4), %r10d
        cmpq    %rax, %r10
        jae     4f
        incq    %r9
        cmpq    %rcx, %r9
        jb      1b                           // none: the last (highest) entry
4:      movq    WL_WANT_FLAGS(%rdi), %rdx
        cmpq    $WL_KIND_PUBLISH_UTIL, WL_KIND(%rdi)
        je      7f                           // the estimate itself, at every update
        cmpq    $WL_KIND_PUBLISH, WL_KIND(%rdi)
        jne     5f
        movq    %rdx, %r11
        btsq    $32, %r11
        cmpq    %r11, WL_LAST_FLAGS(%rdi)
        jne     7f                           // the flags change: publish at once
5:      movq    WL_LAST_REQUEST(%rdi), %rax
        testq   %rax, %rax
        jz      6f
        movq    %r8, %r11
        subq    %rax, %r11
        cmpq    WL_RATE_LIMIT(%rdi), %r11
        jb      9f                           // within the rate limit
6:      cmpq    WL_LAST_PERF(%rdi), %r10
        je      9f                           // no change
7:      movq    %r8, WL_LAST_REQUEST(%rdi)
        movq    %r10, WL_LAST_PERF(%rdi)
        movq    %rdx, %rax
        btsq    $32, %rax
        movq    %rax, WL_LAST_FLAGS(%rdi)
        incq    WL_REQUESTS(%rdi)
        movq    WL_TARGET(%rdi), %r9
        cmpq    $WL_KIND_STORE, WL_KIND(%rdi)
        jne     8f
        movl    %r10d, (%r9)                 // set_perf
        ret
8:      movl    SLOT_SEQ(%r9), %eax          // the shared-page protocol (PUBLISH)
        andl    $~1, %eax
        leal    1(%rax), %ecx
        movl    %ecx, SLOT_SEQ(%r9)
        movl    %edx, SLOT_FLAGS(%r9)
        cmpq    $WL_KIND_PUBLISH_UTIL, WL_KIND(%rdi)
        jne     11f
        movq    WL_UTIL(%rdi), %r11          // util is 16.16 of 0..1024
        shrq    $16, %r11
        movl    %r11d, SLOT_UTIL(%r9)
        jmp     12f
11:     movl    %r10d, SLOT_PERF(%r9)
12:     addl    $2, %eax
        jnz     10f
        movl    $2, %eax
10:     movl    %eax, SLOT_SEQ(%r9)
        mfence
        testl   $HOST_FLAG_KICK, SLOT_HOST_FLAGS(%r9)
        jz      9f
        movq    WL_DOORBELL(%rdi), %rax
        movl    %ebp, (%rax)
        incq    WL_KICKS(%rdi)
9:      ret

vcpufreq_guest_code_end:

#else

// Not x86-64: no interpreter. The VMM refuses to create VMs on such hosts.
        .section .rodata.vcpufreq_guest, "a"
        .globl vcpufreq_guest_code_begin
        .globl vcpufreq_guest_code_end
vcpufreq_guest_code_begin:
vcpufreq_guest_code_end:

#endif

        .section .note.GNU-stack, "", @progbits
