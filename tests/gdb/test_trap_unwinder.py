"""`bt` through the trap: from `resolve_locked` into the interrupted code, EL0 and EL1.

`run forkwrite` (kernel/src/process/user_programs.S) stores into its data page after the
fork: the child's `str x0, [x19]` takes a COW fault from EL0, and later the kernel's own
copy-out of the parent's `wait` status takes one at EL1 (inside a syscall). Both reach
`resolve_locked`. The trap frame is found without the plugin: gdb's DWARF unwinding gives
the stack pointer of the frame that called into Rust (`mov x0, sp; bl tinyos_trap`), and
QEMU's `xp` reads its 36 words physically; their meaning is the Rust struct's order
(x0..x30, sp_el0, elr, spsr, esr, far; `#[repr(C)]`, no padding, asserted by the kernel).
They are checked against the live ESR_EL1/FAR_EL1/ELR_EL1 and the architecture (EC 0x24
data abort from EL0, 0x25 at EL1; SPSR.M 0 = EL0t, 5 = EL1h), and the frame after the
entry must show exactly those registers."""

from __future__ import annotations

import re

PC_INDEX, SP_EL0, ELR, SPSR, ESR, FAR = 32, 31, 32, 33, 34, 35
FRAME_WORDS = 36
EC_DABT_LOWER, EC_DABT_CURRENT = 0x24, 0x25
USER_DATA = 0x80_0000  # forkwrite's data page (user_programs.S)
BT_LINE = re.compile(r"^#(\d+)\s+(?:(0x[0-9a-f]+) in )?(.*)$")


def backtrace(s) -> list[tuple[int, int | None, str]]:
    out = []
    for line in s.gdb.cli("bt").splitlines():
        m = BT_LINE.match(line)
        if m:
            out.append((int(m[1]), int(m[2], 16) if m[2] else None, m[3]))
    return out


def saved_frame(s, level: int) -> list[int]:
    """The 36 words at the stack pointer of frame ``level`` (gdb's CFI unwinding), via `xp`."""
    s.gdb.cli(f"frame {level}")
    sp = s.gdb.read_register("sp")
    words = s.xp(s.gva2gpa(sp), FRAME_WORDS)
    s.gdb.cli("frame 0")
    return words


def frame_registers(s, level: int) -> dict[str, int]:
    s.gdb.cli(f"frame {level}")
    names = [f"x{i}" for i in range(31)] + ["sp", "pc", "cpsr"]
    regs = {name: s.gdb.read_register(name) for name in names}
    s.gdb.cli("frame 0")
    return regs


def assert_interrupted_context(regs: dict[str, int], words: list[int], sp: int) -> None:
    assert [regs[f"x{i}"] for i in range(31)] == words[:31]
    assert regs["pc"] == words[ELR] and regs["cpsr"] == words[SPSR] & 0xFFFF_FFFF
    assert regs["sp"] == sp


def test_bt_through_the_trap_from_el0_and_el1(tinyos_debug_factory):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    stop = s.gdb.run_to(s.location("cow_fault::resolve_locked"),
                        action=lambda: s.console.send_line("run forkwrite"), timeout=60)
    assert stop.func == "tinyos::process::cow_fault::resolve_locked", stop.payload
    child = s.gdb.read_register("x1")  # resolve_locked(cow, pid, ...): the faulting process

    # -- EL0: the child's store
    frames = backtrace(s)
    entry = next(level for level, _, text in frames if text.startswith("tinyos_trap_entry"))
    user_level, user_pc, user_text = frames[-1]
    assert user_level == entry + 1 and user_text.startswith(f"<user pid {child}>"), frames
    words = saved_frame(s, entry)
    assert words[ESR] == s.gdb.read_register("ESR_EL1") and words[ESR] >> 26 == EC_DABT_LOWER
    assert words[FAR] == s.gdb.read_register("FAR_EL1") == USER_DATA
    assert words[ELR] == s.gdb.read_register("ELR_EL1") == user_pc
    assert words[SPSR] & 0xF == 0  # EL0t
    regs = frame_registers(s, user_level)
    assert_interrupted_context(regs, words, sp=words[SP_EL0])
    s.gdb.cli(f"frame {user_level}")
    insn = s.gdb.cli("x/i $pc")
    assert re.search(r"str\s+x0, \[x19\]", insn), insn
    assert regs["x19"] == USER_DATA
    info = s.gdb.cli("info registers pc")
    assert f"{words[ELR]:#x}" in info
    s.gdb.cli("frame 0")
    assert "EL0t" in frames[entry][2] and f"ESR {words[ESR]:#x}" in frames[entry][2]

    # -- EL1: the kernel's copy-out into the parent's (still shared) page, inside `wait`
    s.gdb.break_insert(s.location("cow_fault::resolve_locked"), temporary=True)
    s.gdb.continue_and_wait_stop(60)
    parent = s.gdb.read_register("x1")
    assert parent != child
    frames = backtrace(s)
    entries = [level for level, _, text in frames if text.startswith("tinyos_trap_entry")]
    assert len(entries) == 2, frames  # the data abort at EL1, inside the svc from EL0
    kernel_entry, svc_entry = entries
    words = saved_frame(s, kernel_entry)
    assert words[ESR] == s.gdb.read_register("ESR_EL1") and words[ESR] >> 26 == EC_DABT_CURRENT
    assert words[FAR] == s.gdb.read_register("FAR_EL1")
    assert words[SPSR] & 0xF == 0b0101  # EL1h
    s.gdb.cli(f"frame {kernel_entry}")
    frame_at = s.gdb.read_register("sp")
    s.gdb.cli("frame 0")
    regs = frame_registers(s, kernel_entry + 1)
    assert_interrupted_context(regs, words, sp=frame_at + 8 * FRAME_WORDS)
    assert frames[kernel_entry + 1][1] == words[ELR] == s.gdb.read_register("ELR_EL1")
    # gdb's own unwinding carries on from the interrupted kernel code up to the syscall's
    # trap and the parent's user frame.
    assert any("syscall" in text for _, _, text in frames[kernel_entry + 1:svc_entry]), frames
    assert frames[-1][0] == svc_entry + 1 and frames[-1][2].startswith(f"<user pid {parent}>"), frames
    svc_words = saved_frame(s, svc_entry)
    assert svc_words[ESR] >> 26 == 0x15  # SVC from AArch64
    assert frames[-1][1] == svc_words[ELR]


def test_bt_at_the_first_instruction_is_untouched(tinyos_debug_factory):
    """MMU off, nothing on the stack: the unwinder claims nothing and says nothing -- and
    having looked at the kernel then, it still unwinds the trap once the kernel runs (the
    entry's call site is read from the ELF, not from memory unmapped at reset)."""
    s = tinyos_debug_factory(timeout=60)
    text = s.gdb.cli("bt")
    assert text.startswith("#0") and "tinyos_trap_entry" not in text and "Python" not in text
    s.boot_to_prompt(timeout=60)
    s.gdb.run_to(s.location("cow_fault::resolve_locked"), action=lambda: s.console.send_line("run forkwrite"),
                 timeout=60)
    assert backtrace(s)[-1][2].startswith("<user pid "), backtrace(s)


def test_bt_stopped_in_user_code_names_the_process(tinyos_booted):
    """An interrupt while a background `spin` loops lands at EL0 most of the time: frame #0
    is that process's user code, named as such (not an empty name)."""
    s = tinyos_booted
    started = s.shell("run spin &")
    pid = int(re.search(r"process (\d+) \(spin\) started", started).group(1))
    for _ in range(40):
        s.gdb.interrupt()
        if (s.gdb.read_register("cpsr") >> 2) & 3 == 0:
            break
        s.gdb.resume()
    else:
        raise AssertionError("40 interrupts never landed at EL0 while spin looped")
    first = s.gdb.cli("bt").splitlines()[0]
    assert first.startswith("#0") and f"in <user pid {pid}> ()" in first, first
    s.gdb.resume()
    s.shell(f"kill {pid}")


IRQ_FROM_EL0 = 0x480  # the IRQ vector for a lower EL using AArch64 (Arm ARM, "Vector tables")


def test_bt_at_an_exception_vector_unwinds_from_the_live_registers(tinyos_booted):
    """Stopped at the first instruction of a vector (the timer's IRQ while a background
    `spin` loops at EL0), nothing is saved yet: frame #1 is the interrupted user code, with
    exactly the registers the exception left -- pc = ELR_EL1, sp = SP_EL0, cpsr = SPSR_EL1
    (EL0t), x0-x30 untouched -- and the backtrace ends there."""
    s = tinyos_booted
    started = s.shell("run spin &")
    pid = int(re.search(r"process (\d+) \(spin\) started", started).group(1))
    s.gdb.interrupt()
    vector = s.gdb.read_register("VBAR") + IRQ_FROM_EL0  # QEMU names VBAR_EL1 so
    s.gdb.break_insert(f"*{vector:#x}", temporary=True)
    s.gdb.continue_and_wait_stop(30)
    assert s.gdb.read_register("pc") == vector
    frames = backtrace(s)
    assert len(frames) == 2 and frames[1][2].startswith(f"<user pid {pid}>"), frames
    here, interrupted = frame_registers(s, 0), frame_registers(s, 1)
    assert interrupted["pc"] == frames[1][1] == s.gdb.read_register("ELR_EL1") < 1 << 48
    assert interrupted["sp"] == s.gdb.read_register("SP_EL0")
    assert interrupted["cpsr"] == s.gdb.read_register("SPSR_EL1") & 0xFFFF_FFFF and interrupted["cpsr"] & 0xF == 0
    assert [interrupted[f"x{i}"] for i in range(31)] == [here[f"x{i}"] for i in range(31)]
    s.gdb.resume()
    s.shell(f"kill {pid}")


SYNC_AT_EL1H = 0x200  # the synchronous vector for the current EL on SP_ELx (Arm ARM, "Vector tables")


def test_bt_at_an_el1h_vector_unwinds_into_the_kernel_code_that_faulted(tinyos_debug_factory):
    """The kernel's copy-out of the parent's `wait` status into its still-shared data page
    (`run forkwrite`) takes a permission fault at EL1h: stopped at the vector's first
    instruction, frame #1 is the kernel code that faulted (pc = ELR_EL1, sp = the current
    SP: nothing pushed yet), and gdb's own unwinding carries on from there."""
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    s.gdb.interrupt()
    vector = s.gdb.read_register("VBAR") + SYNC_AT_EL1H  # QEMU names VBAR_EL1 so
    stop = s.gdb.run_to(f"*{vector:#x}", action=lambda: s.console.send_line("run forkwrite"), timeout=60)
    assert s.gdb.read_register("pc") == vector, stop.payload
    frames = backtrace(s)
    here, interrupted = frame_registers(s, 0), frame_registers(s, 1)
    assert interrupted["pc"] == frames[1][1] == s.gdb.read_register("ELR_EL1") >= 1 << 48  # kernel code
    assert s.gdb.read_register("SPSR_EL1") & 0xF == 0b0101  # EL1h
    assert interrupted["sp"] == here["sp"] and interrupted["cpsr"] == s.gdb.read_register("SPSR_EL1") & 0xFFFF_FFFF
    assert [interrupted[f"x{i}"] for i in range(31)] == [here[f"x{i}"] for i in range(31)]
    assert "uaccess" in frames[1][2], frames  # the store that faulted
    assert any("syscall" in text for _, _, text in frames[2:]), frames  # ... inside `wait`
