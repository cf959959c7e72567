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
