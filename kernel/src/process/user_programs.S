// TinyOS user programs: EL0 code built into the kernel image.
//
// The whole image [tinyos_user_image_start, tinyos_user_image_end) is COPIED into frames
// mapped read-only + executable for EL0 at USER_CODE_VA (0x40_0000) in every process; the
// kernel never executes it. Hence the rules:
// - position independent: only PC-relative `adr`/`b`/`bl` to labels of this image (never
//   `adrp`, which is page relative, and no absolute addresses of labels);
// - nothing outside the image is called: syscalls only (`svc #0`, x8 = number,
//   x0..x5 = arguments, result in x0; every other register is preserved);
// - fixed user addresses (data page, heap) are plain constants.
// Program entry: x0 = the argument given to `run <program> [arg]`, sp = stack top.
// Exit status 0 = the program's checks passed; 1 = a check failed (it printed why).
//
// Keep in step with process/user.rs (entry table, VAs, syscall numbers).

.equ SYS_WRITE, 0
.equ SYS_GETPID, 1
.equ SYS_FORK, 2
.equ SYS_EXIT, 3
.equ SYS_WAIT, 4
.equ SYS_YIELD, 5
.equ SYS_SBRK, 6
.equ SYS_PAUSE, 7
.equ SYS_FREEFRAMES, 8
.equ SYS_COWREFS, 9

.equ USER_DATA_VA, 0x800000
.equ PAGE, 4096
.equ KILLED_STATUS, 137

.macro sys number
    mov     x8, #\number
    svc     #0
.endm

// Prints the NUL-terminated string at `label`. Clobbers x0-x3, x8, x30.
.macro puts label
    adr     x0, \label
    bl      u_puts
.endm

// Continues when the flags satisfy `cond`, else fails the program with message `msg`.
.macro expect cond, msg
    b.\cond 8888f
    adr     x0, \msg
    b       u_fail
8888:
.endm

.macro exit_with code
    mov     x0, #\code
    sys     SYS_EXIT
.endm

.section .rodata.tinyos_user, "a"
.balign 4096
.global tinyos_user_image_start
tinyos_user_image_start:

// ---------------------------------------------------------------- runtime (leaf routines)

// u_puts(x0 = NUL-terminated string)
u_puts:
    mov     x1, x0
1:  ldrb    w2, [x1], #1
    cbnz    w2, 1b
    sub     x2, x1, x0
    sub     x2, x2, #1
    mov     x1, x0
    mov     x0, #1
    sys     SYS_WRITE
    ret

// u_putdec(x0 = unsigned value): uses 32 bytes of stack as the digit buffer.
u_putdec:
    sub     sp, sp, #32
    add     x1, sp, #32
    mov     x2, #10
1:  udiv    x3, x0, x2
    msub    x4, x3, x2, x0
    add     w4, w4, #'0'
    strb    w4, [x1, #-1]!
    mov     x0, x3
    cbnz    x0, 1b
    add     x2, sp, #32
    sub     x2, x2, x1
    mov     x0, #1
    sys     SYS_WRITE
    add     sp, sp, #32
    ret

// u_fail(x0 = message): prints "FAIL: <message>" and exits with status 1.
u_fail:
    mov     x19, x0
    adr     x0, s_fail
    bl      u_puts
    mov     x0, x19
    bl      u_puts
    exit_with 1

// u_fill_pages(x0 = base, x1 = pages, x2 = first value, x7 = step): word 0 of page i
// = x2 + i * x7.
u_fill_pages:
    mov     x3, #0
    mov     x4, x2
1:  cmp     x3, x1
    b.hs    2f
    add     x6, x0, x3, lsl #12
    str     x4, [x6]
    add     x4, x4, x7
    add     x3, x3, #1
    b       1b
2:  ret

// u_check_pages(x0 = base, x1 = pages, x2 = first value, x7 = step) -> x0 = 1 if word 0
// of every page i is x2 + i * x7, else 0.
u_check_pages:
    mov     x3, #0
    mov     x5, x2
1:  cmp     x3, x1
    b.hs    2f
    add     x6, x0, x3, lsl #12
    ldr     x4, [x6]
    cmp     x4, x5
    b.ne    3f
    add     x5, x5, x7
    add     x3, x3, #1
    b       1b
2:  mov     x0, #1
    ret
3:  mov     x0, #0
    ret

// ---------------------------------------------------------------- hello
// Prints its pid and exits 0.
.global tinyos_user_hello
tinyos_user_hello:
    puts    s_hello
    sys     SYS_GETPID
    bl      u_putdec
    puts    s_nl
    exit_with 0

// ---------------------------------------------------------------- forkwrite
// fork, then the child writes a page the parent wrote: each keeps its own value, and the
// page's COW reference count is what the rules say at each step.
.global tinyos_user_forkwrite
tinyos_user_forkwrite:
    mov     x19, #USER_DATA_VA
    mov     x0, #0x1111
    str     x0, [x19]
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.eq    1f
    mov     x20, x0                         // parent: child's pid
    mov     x0, x19
    sys     SYS_COWREFS
    cmp     x0, #2                          // shared by parent and child
    expect  eq, s_fw_refs2
    add     x0, x19, #8
    sys     SYS_WAIT
    cmp     x0, x20
    expect  eq, s_wait_pid
    ldr     x0, [x19, #8]
    cmp     x0, #0
    expect  eq, s_child_status
    ldr     x0, [x19]
    mov     x9, #0x1111
    cmp     x0, x9
    expect  eq, s_fw_parent_value
    mov     x0, x19
    sys     SYS_COWREFS
    cmp     x0, #0                          // wait's status write was the last sharer's
    expect  eq, s_fw_refs0
    puts    s_fw_parent_ok
    exit_with 0
1:  ldr     x0, [x19]                       // child
    mov     x9, #0x1111
    cmp     x0, x9
    expect  eq, s_fw_child_saw
    mov     x0, x19
    sys     SYS_COWREFS
    cmp     x0, #2
    expect  eq, s_fw_refs2
    mov     x0, #0x2222
    str     x0, [x19]                       // copy-on-write fault: duplicated
    ldr     x0, [x19]
    mov     x9, #0x2222
    cmp     x0, x9
    expect  eq, s_fw_child_value
    mov     x0, x19
    sys     SYS_COWREFS
    cmp     x0, #0                          // its own private copy now
    expect  eq, s_fw_refs0
    puts    s_fw_child_ok
    exit_with 0

// ---------------------------------------------------------------- forkpause <pages>
// For inspection from the shell between steps (each `cont` wakes paused processes):
//   step 1: sbrk <pages>, write every page, fork, both pause
//           (shared: <pages> heap + 1 data + 2 stack pages, refs 2 each);
//   step 2: the child writes heap page 0 (duplicated) and pauses, the parent pauses;
//   step 3: the parent writes heap page 0 (reused: last sharer), the child exits 0;
//           the parent checks its pages and pauses;
//   step 4: the parent reaps the child and exits 0.
// Between fork and the last step neither process writes anything else (no stack use).
.global tinyos_user_forkpause
tinyos_user_forkpause:
    mov     x19, x0
    cbnz    x19, 1f
    mov     x19, #1
1:  lsl     x0, x19, #12
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0                         // heap base
    mov     x0, x20
    mov     x1, x19
    mov     x2, #1
    mov     x7, #1
    bl      u_fill_pages                   // page i holds i + 1
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    mov     x21, x0
    sys     SYS_PAUSE                       // end of step 1
    cbnz    x21, 2f
    mov     x0, #0xC0DE                     // child, step 2
    str     x0, [x20]
    sys     SYS_PAUSE
    mov     x0, #0                          // child, step 3
    sys     SYS_EXIT
2:  sys     SYS_PAUSE                       // parent, end of step 2
    mov     x0, #0xBEEF                     // parent, step 3
    str     x0, [x20]
    ldr     x0, [x20]
    mov     x1, #0xBEEF
    cmp     x0, x1
    expect  eq, s_fp_value
    add     x0, x20, #PAGE
    sub     x1, x19, #1
    mov     x2, #2
    mov     x7, #1
    bl      u_check_pages
    cmp     x0, #1
    expect  eq, s_fp_value
    sys     SYS_PAUSE                       // end of step 3
    mov     x0, #0                          // parent, step 4
    sys     SYS_WAIT
    cmp     x0, x21
    expect  eq, s_wait_pid
    exit_with 0

// ---------------------------------------------------------------- bigfork
// xv6 cowtest "simple": a process holding two thirds of the free frames forks (only
// possible with copy-on-write), twice in a row, and gives the memory back each time.
.global tinyos_user_bigfork
tinyos_user_bigfork:
    mov     x22, #2                         // rounds
1:  sys     SYS_FREEFRAMES
    lsl     x0, x0, #1
    mov     x1, #3
    udiv    x19, x0, x1                     // pages = free * 2 / 3
    lsl     x0, x19, #12
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0
    mov     x1, x19
    mov     x2, #7
    mov     x7, #1
    bl      u_fill_pages
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.ne    2f
    exit_with 0                             // child: nothing written
2:  mov     x21, x0
    mov     x0, #0
    sys     SYS_WAIT
    cmp     x0, x21
    expect  eq, s_wait_pid
    mov     x0, x20
    mov     x1, x19
    mov     x2, #7
    mov     x7, #1
    bl      u_check_pages
    cmp     x0, #1
    expect  eq, s_bf_value
    lsl     x0, x19, #12
    neg     x0, x0
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    subs    x22, x22, #1
    b.ne    1b
    puts    s_bf_ok
    mov     x0, x19
    bl      u_putdec
    puts    s_bf_ok2
    exit_with 0

// ---------------------------------------------------------------- threeshare
// xv6 cowtest "three": three processes share a quarter of the free frames; each writes
// its own pid into every page, yields, and must read back only its own pid.
.global tinyos_user_threeshare
tinyos_user_threeshare:
    sys     SYS_FREEFRAMES
    lsr     x19, x0, #2                     // pages = free / 4
    lsl     x0, x19, #12
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0
    mov     x1, x19
    mov     x2, #0
    mov     x7, #0
    bl      u_fill_pages
    mov     x24, #1                         // x24 = 1 in the original process only
    sys     SYS_FORK                        // parent -> child 1
    cmp     x0, #0
    expect  ge, s_fork_failed
    mov     x21, x0                         // x21 = this process's child (0: none)
    b.ne    1f
    mov     x24, #0
    sys     SYS_FORK                        // child 1 -> child 2
    cmp     x0, #0
    expect  ge, s_fork_failed
    mov     x21, x0
1:  sys     SYS_GETPID
    mov     x23, x0
    mov     x0, x20
    mov     x1, x19
    mov     x2, x23
    mov     x7, #0
    bl      u_fill_pages
    sys     SYS_YIELD
    sys     SYS_YIELD
    mov     x0, x20
    mov     x1, x19
    mov     x2, x23
    mov     x7, #0
    bl      u_check_pages
    cmp     x0, #1
    expect  eq, s_ts_value
    cbz     x21, 2f
    mov     x0, #USER_DATA_VA
    sys     SYS_WAIT
    cmp     x0, x21
    expect  eq, s_wait_pid
    mov     x0, #USER_DATA_VA
    ldr     x0, [x0]
    cmp     x0, #0
    expect  eq, s_child_status
2:  cbz     x24, 3f
    puts    s_ts_ok
3:  exit_with 0

// ---------------------------------------------------------------- waitbuf
// xv6 cowtest "file": a syscall writing into a user buffer shared copy-on-write with the
// parent (wait's status) must break the sharing: the parent keeps its value.
.global tinyos_user_waitbuf
tinyos_user_waitbuf:
    mov     x19, #USER_DATA_VA
    mov     x0, #0x5A5A
    str     x0, [x19, #16]
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.eq    1f
    mov     x20, x0                         // parent: status goes to a different word
    add     x0, x19, #24
    sys     SYS_WAIT
    cmp     x0, x20
    expect  eq, s_wait_pid
    ldr     x0, [x19, #24]
    cmp     x0, #0
    expect  eq, s_child_status
    ldr     x0, [x19, #16]
    mov     x9, #0x5A5A
    cmp     x0, x9
    expect  eq, s_wb_leak
    puts    s_wb_ok
    exit_with 0
1:  sys     SYS_FORK                        // child: make a grandchild that exits 0x77
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.ne    2f
    exit_with 0x77
2:  mov     x20, x0
    mov     x0, x19
    sys     SYS_COWREFS
    cmp     x0, #2                          // child and parent (grandchild may be gone)
    expect  ge, s_wb_notshared
    add     x0, x19, #16
    sys     SYS_WAIT                        // the kernel stores 0x77 into the shared page
    cmp     x0, x20
    expect  eq, s_wait_pid
    ldr     x0, [x19, #16]
    cmp     x0, #0x77
    expect  eq, s_wb_status
    exit_with 0

// ---------------------------------------------------------------- oom
// Out of frames during copy-on-write: the parent holds 60 % of the free frames and
// forks; the child writes every page, runs out of frames and is killed; the parent's
// pages are intact.
.global tinyos_user_oom
tinyos_user_oom:
    sys     SYS_FREEFRAMES
    mov     x1, #6
    mul     x0, x0, x1
    mov     x1, #10
    udiv    x19, x0, x1                     // pages = free * 6 / 10
    lsl     x0, x19, #12
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0
    mov     x1, x19
    mov     x2, #3
    mov     x7, #1
    bl      u_fill_pages
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.ne    1f
    mov     x0, x20                         // child: copy everything (cannot fit)
    mov     x1, x19
    mov     x2, #0x1000
    mov     x7, #1
    bl      u_fill_pages
    puts    s_oom_survived
    exit_with 1
1:  mov     x21, x0
    mov     x0, #USER_DATA_VA
    sys     SYS_WAIT
    cmp     x0, x21
    expect  eq, s_wait_pid
    mov     x0, #USER_DATA_VA
    ldr     x0, [x0]
    cmp     x0, #KILLED_STATUS
    expect  eq, s_oom_status
    mov     x0, x20
    mov     x1, x19
    mov     x2, #3
    mov     x7, #1
    bl      u_check_pages
    cmp     x0, #1
    expect  eq, s_oom_value
    puts    s_oom_ok
    exit_with 0

// ---------------------------------------------------------------- reuse
// The last sharer's write reuses the frame in place: the child exits without writing,
// the parent's page is then tracked with one reference and its write copies nothing.
.global tinyos_user_reuse
tinyos_user_reuse:
    mov     x0, #PAGE
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0
    mov     x0, #0x4242
    str     x0, [x20]
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.ne    1f
    exit_with 0
1:  mov     x21, x0
    mov     x0, #0
    sys     SYS_WAIT
    cmp     x0, x21
    expect  eq, s_wait_pid
    mov     x0, x20
    sys     SYS_COWREFS
    cmp     x0, #1                          // only the parent left
    expect  eq, s_ru_refs1
    mov     x0, #0x4343
    str     x0, [x20]                       // reused in place
    mov     x0, x20
    sys     SYS_COWREFS
    cmp     x0, #0
    expect  eq, s_ru_refs0
    ldr     x0, [x20]
    mov     x9, #0x4343
    cmp     x0, x9
    expect  eq, s_ru_value
    puts    s_ru_ok
    exit_with 0

// ---------------------------------------------------------------- rowrite
// Writes to its own code page (read-only, not copy-on-write): the kernel kills it.
.global tinyos_user_rowrite
tinyos_user_rowrite:
    adr     x0, tinyos_user_rowrite
    str     xzr, [x0]
    puts    s_rw_survived
    exit_with 1

// ---------------------------------------------------------------- forkcycle <n>
// n times: fork; the child writes the data page and a heap page and exits; the parent
// reaps it. Every frame the cycles use must come back.
.global tinyos_user_forkcycle
tinyos_user_forkcycle:
    mov     x19, x0
    cbnz    x19, 1f
    mov     x19, #200
1:  mov     x0, #PAGE
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0
    str     x19, [x20]
    mov     x21, #USER_DATA_VA
2:  sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.ne    3f
    str     x19, [x21, #32]                 // child: break both pages, then exit
    str     x19, [x20]
    exit_with 0
3:  mov     x22, x0
    mov     x0, #0
    sys     SYS_WAIT
    cmp     x0, x22
    expect  eq, s_wait_pid
    subs    x19, x19, #1
    b.ne    2b
    puts    s_fc_ok
    exit_with 0

// ---------------------------------------------------------------- idle
// Allocates one heap page holding its pid, then pauses forever (each `cont` checks the
// page still holds its pid). Used by `~3` to have two processes to share pages between.
.global tinyos_user_idle
tinyos_user_idle:
    mov     x0, #PAGE
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0
    sys     SYS_GETPID
    mov     x19, x0
    str     x19, [x20]
1:  sys     SYS_PAUSE
    ldr     x0, [x20]
    cmp     x0, x19
    expect  eq, s_idle_value
    b       1b

// ---------------------------------------------------------------- sbrktest
// sbrk grows the heap with zero-filled pages and shrinks it giving the frames back:
// returns the old break, new pages read as zero (also pages re-grown after a shrink),
// a shrink of 2 pages frees exactly 2 frames, a shrink below the heap start fails.
.global tinyos_user_sbrktest
tinyos_user_sbrktest:
    mov     x0, #0
    sys     SYS_SBRK
    mov     x20, x0                         // the current break: the heap start
    mov     x0, #0x3000
    sys     SYS_SBRK
    cmp     x0, x20
    expect  eq, s_sb_old
    mov     x0, x20
    mov     x1, #(3 * 512)
    bl      u_check_zero
    cmp     x0, #1
    expect  eq, s_sb_zero
    mov     x0, x20
    mov     x1, #3
    mov     x2, #0x77
    mov     x7, #0
    bl      u_fill_pages
    sys     SYS_FREEFRAMES
    mov     x21, x0
    mov     x0, #-0x2000
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    sys     SYS_FREEFRAMES
    sub     x0, x0, x21
    cmp     x0, #2
    expect  eq, s_sb_freed
    mov     x0, #0x2000
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    add     x0, x20, #PAGE
    mov     x1, #(2 * 512)
    bl      u_check_zero
    cmp     x0, #1
    expect  eq, s_sb_zero
    ldr     x0, [x20]
    cmp     x0, #0x77
    expect  eq, s_sb_kept
    mov     x0, #-0x10000
    sys     SYS_SBRK
    cmn     x0, #1
    expect  eq, s_sb_under
    mov     x0, #0
    sys     SYS_SBRK
    add     x1, x20, #0x3000
    cmp     x0, x1
    expect  eq, s_sb_old
    puts    s_sb_ok
    exit_with 0

// u_check_zero(x0 = address, x1 = doublewords) -> x0 = 1 if all are zero, else 0.
u_check_zero:
    ldr     x2, [x0], #8
    cbnz    x2, 1f
    subs    x1, x1, #1
    b.ne    u_check_zero
    mov     x0, #1
    ret
1:  mov     x0, #0
    ret

// ---------------------------------------------------------------- forkfail
// fork with almost no free frames fails part-way (the child's tables run out after some
// pages were already shared) and must roll back: fork returns -12 (ENOMEM), the
// parent's pages keep their values, none is shared any more, and writing every one of
// them needs no frame (no copy: the parent is each page's only user).
.global tinyos_user_forkfail
tinyos_user_forkfail:
    mov     x0, #0
    sys     SYS_SBRK
    mov     x20, x0                         // heap base
    mov     x19, #0                         // heap pages
1:  mov     x0, #PAGE                       // take every frame there is
    sys     SYS_SBRK
    cmn     x0, #1
    b.eq    2f
    add     x19, x19, #1
    b       1b
2:  mov     x0, #-0x6000                    // give 6 back: enough for a few child tables
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    sub     x19, x19, #6
    mov     x0, x20
    mov     x1, x19
    mov     x2, #5
    mov     x7, #1
    bl      u_fill_pages
    sys     SYS_FORK
    cmp     x0, #0
    b.ne    3f
    exit_with 1                             // a child must not exist
3:  expect  lt, s_ff_forked
    mov     x9, #-12
    cmp     x0, x9
    expect  eq, s_ff_errno
    mov     x0, x20
    sys     SYS_COWREFS
    cmp     x0, #2
    expect  lo, s_ff_refs
    sys     SYS_FREEFRAMES
    mov     x21, x0
    mov     x0, x20
    mov     x1, x19
    mov     x2, #5
    mov     x7, #1
    bl      u_check_pages
    cmp     x0, #1
    expect  eq, s_ff_value
    mov     x0, x20
    mov     x1, x19
    mov     x2, #0x900
    mov     x7, #1
    bl      u_fill_pages                    // would be killed if a copy were needed
    mov     x0, x20
    mov     x1, x19
    mov     x2, #0x900
    mov     x7, #1
    bl      u_check_pages
    cmp     x0, #1
    expect  eq, s_ff_value
    sys     SYS_FREEFRAMES
    cmp     x0, x21
    expect  eq, s_ff_frames
    puts    s_ff_ok
    exit_with 0

// ---------------------------------------------------------------- spin
// Loops forever without a syscall: only the timer tick takes the CPU back (the shell's
// `kill`, or Ctrl-C when it runs in the foreground, ends it).
.global tinyos_user_spin
tinyos_user_spin:
1:  add     x0, x0, #1
    b       1b

// ---------------------------------------------------------------- forkrace <n>
// FR_CYCLES times: the parent writes its values into FR_PAGES heap pages, forks n
// children (default 3, at most 8) and then every process, parent and children at once,
// rewrites and re-reads all the pages FR_ROUNDS times with values made of its own pid,
// the round and the page: the first write of each is a copy-on-write fault, and the
// timer tick preempts them anywhere in between. Each must read back only its own values;
// the parent then reaps every child (status 0) and checks its pages once more.
.equ FR_PAGES, 4
.equ FR_ROUNDS, 50000
.equ FR_CYCLES, 3
.global tinyos_user_forkrace
tinyos_user_forkrace:
    mov     x19, x0
    cbnz    x19, 1f
    mov     x19, #3
1:  cmp     x19, #8
    b.ls    2f
    mov     x19, #8
2:  mov     x0, #(FR_PAGES * PAGE)
    sys     SYS_SBRK
    cmn     x0, #1
    expect  ne, s_sbrk_failed
    mov     x20, x0                         // heap base
    sys     SYS_GETPID
    mov     x21, x0                         // own pid
    mov     x22, #FR_CYCLES
3:  mov     x0, x20
    mov     x1, x21
    bl      u_race                          // the pages hold the parent's values
    cmp     x0, #1
    expect  eq, s_fr_value
    mov     x23, #0
4:  cmp     x23, x19                        // fork n children
    b.hs    5f
    sys     SYS_FORK
    cmp     x0, #0
    expect  ge, s_fork_failed
    b.eq    9f
    add     x23, x23, #1
    b       4b
5:  mov     x0, x20                         // parent races its children
    mov     x1, x21
    bl      u_race
    cmp     x0, #1
    expect  eq, s_fr_value
    mov     x23, #0
6:  cmp     x23, x19                        // reap them: each exited 0
    b.hs    7f
    sub     sp, sp, #16
    mov     x0, sp
    sys     SYS_WAIT
    cmp     x0, #0
    expect  gt, s_wait_pid
    ldr     x0, [sp]
    add     sp, sp, #16
    cmp     x0, #0
    expect  eq, s_child_status
    add     x23, x23, #1
    b       6b
7:  subs    x22, x22, #1
    b.ne    3b
    puts    s_fr_ok
    exit_with 0
9:  sys     SYS_GETPID                      // child
    mov     x21, x0
    mov     x0, x20
    mov     x1, x21
    bl      u_race
    cmp     x0, #1
    expect  eq, s_fr_value
    exit_with 0

// u_race(x0 = base, x1 = pid) -> x0 = 1 when, FR_ROUNDS times, word 0 of each of the
// FR_PAGES pages at base read back (pid << 32 | round << 4 | page) right after this
// process wrote it; 0 at the first other value. Clobbers x1-x7.
u_race:
    lsl     x1, x1, #32
    mov     x2, #0                          // round
1:  mov     x3, #FR_ROUNDS
    cmp     x2, x3
    b.hs    5f
    orr     x3, x1, x2, lsl #4
    mov     x4, #0                          // write every page
2:  add     x5, x0, x4, lsl #12
    orr     x6, x3, x4
    str     x6, [x5]
    add     x4, x4, #1
    cmp     x4, #FR_PAGES
    b.lo    2b
    mov     x4, #0                          // then read every page back
3:  add     x5, x0, x4, lsl #12
    ldr     x7, [x5]
    orr     x6, x3, x4
    cmp     x7, x6
    b.ne    6f
    add     x4, x4, #1
    cmp     x4, #FR_PAGES
    b.lo    3b
    add     x2, x2, #1
    b       1b
5:  mov     x0, #1
    ret
6:  mov     x0, #0
    ret

// ---------------------------------------------------------------- strings
s_fail:             .asciz "FAIL: "
s_nl:               .asciz "\n"
s_hello:            .asciz "hello from pid "
s_fork_failed:      .asciz "fork failed\n"
s_sbrk_failed:      .asciz "sbrk failed\n"
s_wait_pid:         .asciz "wait returned the wrong pid\n"
s_child_status:     .asciz "child exited with a non-zero status\n"
s_fw_refs2:         .asciz "forkwrite: page not shared with refs=2 after fork\n"
s_fw_refs0:         .asciz "forkwrite: page still copy-on-write after the write\n"
s_fw_parent_value:  .asciz "forkwrite: parent's value changed by the child\n"
s_fw_child_saw:     .asciz "forkwrite: child did not see the parent's value\n"
s_fw_child_value:   .asciz "forkwrite: child's write did not stick\n"
s_fw_parent_ok:     .asciz "forkwrite: parent still sees 0x1111, child exited 0\n"
s_fw_child_ok:      .asciz "forkwrite: child wrote 0x2222 into its own copy\n"
s_fp_value:         .asciz "forkpause: parent's pages hold the wrong values\n"
s_bf_value:         .asciz "bigfork: parent's pages changed\n"
s_bf_ok:            .asciz "bigfork: forked twice holding "
s_bf_ok2:           .asciz " pages\n"
s_ts_value:         .asciz "threeshare: a page holds another process's value\n"
s_ts_ok:            .asciz "threeshare: three processes each read back only their own values\n"
s_wb_leak:          .asciz "waitbuf: the child's wait status leaked into the parent\n"
s_wb_notshared:     .asciz "waitbuf: the buffer was not shared before wait\n"
s_wb_status:        .asciz "waitbuf: the child did not get its status\n"
s_wb_ok:            .asciz "waitbuf: the syscall's write stayed in the child\n"
s_oom_survived:     .asciz "oom: the child copied more pages than exist\n"
s_oom_status:       .asciz "oom: the child was not killed\n"
s_oom_value:        .asciz "oom: the parent's pages changed\n"
s_oom_ok:           .asciz "oom: child killed out of frames, parent intact\n"
s_ru_refs1:         .asciz "reuse: page not tracked with refs=1 after the child exited\n"
s_ru_refs0:         .asciz "reuse: page still tracked after the write\n"
s_ru_value:         .asciz "reuse: the write did not stick\n"
s_ru_ok:            .asciz "reuse: last sharer's write reused the page\n"
s_rw_survived:      .asciz "rowrite: wrote to a read-only page and survived\n"
s_fc_ok:            .asciz "forkcycle: done\n"
s_idle_value:       .asciz "idle: page lost its value\n"
s_sb_old:           .asciz "sbrktest: sbrk did not return the old break\n"
s_sb_zero:          .asciz "sbrktest: a new heap page is not zero-filled\n"
s_sb_freed:         .asciz "sbrktest: shrinking by 2 pages did not free 2 frames\n"
s_sb_kept:          .asciz "sbrktest: the page below the break lost its value\n"
s_sb_under:         .asciz "sbrktest: shrinking below the heap start succeeded\n"
s_ff_forked:        .asciz "forkfail: fork succeeded without free frames\n"
s_ff_errno:         .asciz "forkfail: fork did not return -12 (ENOMEM)\n"
s_ff_refs:          .asciz "forkfail: a page is still shared after the failed fork\n"
s_ff_value:         .asciz "forkfail: the parent's pages changed\n"
s_ff_frames:        .asciz "forkfail: writing the parent's pages used frames (copies)\n"
s_ff_ok:            .asciz "forkfail: failed fork rolled back, every page private again\n"
s_sb_ok:            .asciz "sbrktest: grows zero-filled, shrinks freeing frames\n"
s_fr_value:         .asciz "forkrace: a page holds another process's value\n"
s_fr_ok:            .asciz "forkrace: every process read back only its own values\n"

.balign 4096
.global tinyos_user_image_end
tinyos_user_image_end:
