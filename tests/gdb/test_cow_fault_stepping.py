"""A stepping session through one copy-on-write fault, checked against the architecture.

The program is the kernel's `forkpause 1` (kernel/src/process/user_programs.S): it grows its
heap by one page, writes 1 into it, forks, and both processes pause; the shell's `cont`
lets the child store 0xC0DE into that page (a write to a shared, read-only page: a COW
fault whose copy the child gets). We stop in the fault path and follow it instruction by
instruction where it matters. Every expected value comes from the ARMv8-A rules, the
scenario or the kernel's own `ps`; page-table entries are read by a four-level walk done
here with QEMU's `xp` (raw physical words), never through the plugin's walker, which is
only compared against it:

- the fault: ESR_EL1.EC = 0x24 (data abort from EL0), WnR = 1, DFSC = 0b001111
  (permission fault, level 3); FAR_EL1 = the heap address the child wrote;
- before: the child's level-3 entry is a valid page, AP = 0b11 (read-only at EL1 and
  EL0), software bit 55 (the kernel's COW mark) set, mapping the parent's frame;
- break-before-make: the first `tlbi` sees the entry invalid, the second the new one;
  each is `tlbi vae1is` (by VA and ASID: a non-global user entry) with the operand
  (ASID << 48) | (VA >> 12), followed by `dsb ish` and `isb`;
- Linux's order: the manager's mapping and the frame's reference are dropped only after
  the child's entry already maps the copy; the old frame's counts go from 2 to 1 then;
- after: the child maps a new frame, AP = 0b01 (EL0 read/write), no bit 55; the parent
  still maps the old frame read-only with bit 55; the contents are the child's 0xC0DE and
  the parent's 1."""

from __future__ import annotations

import json
import re

from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing import DEBUG_EVENT, DebugEvent
from gdb_tinyos.testing.kernel import frame_allocator_expression
from gdb_tinyos.testing.shell import processes

HEAP = 0x1000_0000  # the first sbrk page (the user layout of the design's memory map)
PAGE = 4096
PARENT_VALUE, CHILD_VALUE = 1, 0xC0DE  # forkpause: heap page i holds i + 1; the child stores 0xC0DE

# ESR_EL1 (ARM ARM D17.2.40): EC in [31:26], WnR is ISS bit 6, DFSC is ISS[5:0].
EC_DATA_ABORT_LOWER_EL = 0x24
WNR = 1 << 6
DFSC_PERMISSION_L3 = 0b001111

# Stage-1 VMSAv8-64 level-3 descriptor fields (4 KiB granule).
VALID_PAGE = 0b11
AP_SHIFT = 6  # AP[2:1] in bits [7:6]
AP_RW_EL0 = 0b01  # read/write at EL1 and EL0
AP_RO_EL0 = 0b11  # read-only at EL1 and EL0
NG = 1 << 11
UXN = 1 << 54
SW_COW = 1 << 55  # software bit the kernel documents as its COW mark (debug.rs)
OUTPUT_ADDRESS = 0x0000_FFFF_FFFF_F000
TTBR_BADDR = 0x0000_FFFF_FFFF_FFFE



def physical_word(s, pa: int) -> int:
    """The 64-bit word at physical ``pa``, as QEMU's monitor reads it."""
    return s.xp(pa)[0]


def leaf_entry(s, ttbr0: int, va: int) -> tuple[int, int]:
    """(PA of the level-3 entry for ``va``, its value): a 4 KiB-granule, 48-bit walk
    from ``ttbr0`` through three table descriptors, read with `xp`."""
    table = ttbr0 & TTBR_BADDR
    for level in range(3):
        desc = physical_word(s, table + 8 * ((va >> (39 - 9 * level)) & 0x1FF))
        assert desc & 0b11 == 0b11, f"level {level} entry {desc:#x} for {va:#x} is not a table"
        table = desc & OUTPUT_ADDRESS
    slot = table + 8 * ((va >> 12) & 0x1FF)
    return slot, physical_word(s, slot)


def ap(desc: int) -> int:
    return (desc >> AP_SHIFT) & 0b11


def assert_cow_entry(desc: int, frame: int) -> None:
    assert desc & 0b11 == VALID_PAGE, hex(desc)
    assert ap(desc) == AP_RO_EL0 and desc & SW_COW, f"{desc:#x} is not read-only with the COW bit"
    assert desc & NG and desc & UXN, f"{desc:#x}: a user data page is non-global and never executable"
    assert desc & OUTPUT_ADDRESS == frame, (hex(desc), hex(frame))


def assert_private_entry(desc: int, frame: int) -> None:
    assert desc & 0b11 == VALID_PAGE, hex(desc)
    assert ap(desc) == AP_RW_EL0 and not desc & SW_COW, f"{desc:#x} is not writable at EL0 without the COW bit"
    assert desc & NG and desc & UXN, hex(desc)
    assert desc & OUTPUT_ADDRESS == frame, (hex(desc), hex(frame))


def function_address(kernel, *path: str) -> int:
    """A function's address from the ELF's v0-mangled symbol names (length-prefixed path
    identifiers): gdb's Rust parser cannot name `<Type>::method` in a breakpoint."""
    pattern = re.compile(".*".join(f"{len(part)}{part}" for part in path) + "$")
    with open(kernel, "rb") as f:
        found = {sym["st_value"] for sym in ELFFile(f).get_section_by_name(".symtab").iter_symbols()
                 if sym["st_info"]["type"] == "STT_FUNC" and pattern.search(sym.name)}
    assert len(found) == 1, (path, found)
    return found.pop()


def tlbi_sites(s, function: int) -> dict[int, tuple[str, str]]:
    """Address -> (operation, operand register) of every `tlbi` in the function at ``function``."""
    listing = s.gdb.cli(f"disassemble {function:#x}")
    return {int(addr, 16): (op, reg) for addr, op, reg in
            re.findall(r"(0x[0-9a-f]+) <\+\d+>:\s+tlbi\s+(\w+), (x\d+)", listing)}


def instructions(s, count: int) -> list[str]:
    """The next ``count`` instructions from the pc, as gdb disassembles them ("dsb ish")."""
    text = s.gdb.cli(f"x/{count}i $pc")
    return [" ".join(re.sub(r"//.*", "", m).split()) for m in re.findall(r">:\s+(.*)", text)]


def step_instruction(s) -> None:
    """`stepi`, waiting for the stop it causes."""
    s.gdb.mi("-exec-step-instruction")
    stop = s.gdb.wait_for_stop(30)
    assert stop.reason == "end-stepping-range", stop.payload


class FrameCounts:
    """The frame allocator's per-frame reference counts, read by gdb from DWARF."""

    def __init__(self, s, kernel) -> None:
        self.s = s
        self.state = frame_allocator_expression(kernel)
        self.base = int(s.gdb.evaluate(f"{self.state}.base_pa"), 0)

    def __getitem__(self, pa: int) -> int:
        return int(self.s.gdb.evaluate(f"{self.state}.ref_counts[{(pa - self.base) // PAGE}]"), 0)


def test_stepping_through_a_cow_fault(tinyos_debug_factory, tinyos_kernel):
    s = tinyos_debug_factory(timeout=60)
    s.boot_to_prompt(timeout=60)
    assert re.search(r"process \d+ \(forkpause\) started", s.shell("run forkpause 1", timeout=30))
    table = processes(s.console, timeout=30)
    parent = next(pid for pid, p in table.items() if p.ppid == 0)
    child = next(pid for pid, p in table.items() if p.ppid == parent)
    asid, ttbr0 = table[child].asid, table[child].ttbr0
    assert asid != table[parent].asid

    # -- stop in the fault path, for the child's write only
    stop = s.gdb.run_to(s.location("cow_fault::resolve_locked"), condition=f"$x1 == {child}",
                        action=lambda: s.console.send_line("cont"), timeout=60)
    assert stop.func == "tinyos::process::cow_fault::resolve_locked", stop.payload

    esr, far = s.gdb.read_register("ESR_EL1"), s.gdb.read_register("FAR_EL1")
    assert esr >> 26 == EC_DATA_ABORT_LOWER_EL, hex(esr)
    assert esr & WNR and esr & 0x3F == DFSC_PERMISSION_L3, hex(esr)
    assert far == HEAP
    assert s.gdb.read_register("TTBR0_EL1") == (asid << 48) | ttbr0  # the child's space, tagged with its ASID

    slot, before = leaf_entry(s, ttbr0, HEAP)
    parent_slot, parent_before = leaf_entry(s, table[parent].ttbr0, HEAP)
    shared = parent_before & OUTPUT_ADDRESS
    assert_cow_entry(before, shared)
    assert_cow_entry(parent_before, shared)
    assert s.gdb.read_register("x4") == before  # resolve_locked's `desc` argument: the kernel read the same
    assert s.gva2gpa(HEAP) == shared
    walk = json.loads(s.gdb.cli(f"va2pa {HEAP:#x} --pid {child} --json"))
    assert int(walk["steps"][-1]["table"], 16) + 8 * walk["steps"][-1]["index"] == slot
    assert int(walk["steps"][-1]["descriptor"], 16) == before and int(walk["mapping"]["pa"], 16) == shared
    counts = FrameCounts(s, tinyos_kernel)
    assert counts[shared] == 2 and int(s.gdb.evaluate(f"$cow_refs({shared:#x})")) == 2
    assert physical_word(s, shared) == PARENT_VALUE

    # -- the invalidations, the manager update and the reference drop, in the order they happen
    remap = function_address(tinyos_kernel, "address_space", "AddressSpace", "remap")
    resolve = function_address(tinyos_kernel, "cow_fault", "resolve_locked")
    sites = tlbi_sites(s, remap) | tlbi_sites(s, resolve)
    assert sites, "no tlbi in the remap path"
    for address in sites:
        s.gdb.cli(f"break *{address:#x}")
    remove_mapping = function_address(tinyos_kernel, "cow", "CowManager", "remove_mapping")
    s.gdb.cli(f"break *{remove_mapping:#x} if $x1 == {shared} && $x2 == {HEAP} && $x3 == {child}")
    s.gdb.cli(f"break *tinyos::memory::frame::dec_ref if $x0 == {shared}")
    s.gdb.break_insert(DEBUG_EVENT, condition=s.event_condition(DebugEvent.PAGE_DUPLICATED, DebugEvent.COW_FAULT))
    page_duplicated, cow_fault = (s.event_number(e) for e in (DebugEvent.PAGE_DUPLICATED, DebugEvent.COW_FAULT))

    seen = []
    operand = (asid << 48) | (HEAP >> 12)
    while True:
        stop = s.gdb.continue_and_wait_stop(60)
        assert stop.reason == "breakpoint-hit", stop.payload
        pc = s.gdb.read_register("pc")
        entry = physical_word(s, slot)
        if pc in sites:
            op, register = sites[pc]
            assert op == "vae1is", f"a user entry must be invalidated by VA and ASID, not {op}"
            assert s.gdb.read_register(register) == operand, hex(s.gdb.read_register(register))
            assert instructions(s, 3)[1:] == ["dsb ish", "isb"]
            step_instruction(s)
            assert instructions(s, 1) == ["dsb ish"]
            step_instruction(s)
            assert instructions(s, 1) == ["isb"]
            seen.append(("tlbi", entry))
        elif pc == remove_mapping:
            seen.append(("remove_mapping", entry, counts[shared], int(s.gdb.evaluate(f"$cow_refs({shared:#x})"))))
        elif stop.func == "tinyos::memory::frame::dec_ref":
            seen.append(("dec_ref", entry, counts[shared], int(s.gdb.evaluate(f"$cow_refs({shared:#x})"))))
        else:
            kind, a, b = (s.gdb.read_register(r) for r in ("x0", "x1", "x2"))
            seen.append((kind & 0xFFFF_FFFF, a, b, entry))
            if kind & 0xFFFF_FFFF == cow_fault:
                break
            duplicated_at = (counts[shared], counts[b], physical_word(s, b), physical_word(s, parent_slot))

    new = seen[-2][2]  # the copy, as the kernel announced it
    assert new not in (0, shared) and new & (PAGE - 1) == 0
    writable = seen[1][1]
    assert_private_entry(writable, new)
    assert [step[0] for step in seen] == ["tlbi", "tlbi", "remove_mapping", "dec_ref",
                                          page_duplicated, cow_fault]
    # break-before-make: invalid while the first invalidation runs, the copy at the second
    assert seen[0][1] & 1 == 0 and seen[1][1] == writable
    # the old frame loses its mapping and its reference only once the copy is installed
    assert seen[2] == ("remove_mapping", writable, 2, 2)
    assert seen[3] == ("dec_ref", writable, 2, 1)
    assert seen[4] == (page_duplicated, HEAP, new, writable)
    assert seen[5] == (cow_fault, child, HEAP, writable)
    # when the copy is announced: old frame 1 reference (the parent), the copy 1 and a
    # byte-for-byte copy of the page (the child's store has not been retried yet)
    assert duplicated_at == (1, 1, PARENT_VALUE, parent_before)
    assert s.gva2gpa(HEAP) == new
    assert int(s.gdb.evaluate(f"$cow_refs({shared:#x})")) == 1

    # -- the child retries its store into its own copy; the parent's page is untouched
    s.gdb.cli("delete")
    s.gdb.resume()
    s.console.read_until_prompt(timeout=30)
    s.gdb.interrupt()
    assert leaf_entry(s, ttbr0, HEAP) == (slot, writable)
    assert leaf_entry(s, table[parent].ttbr0, HEAP) == (parent_slot, parent_before)
    assert physical_word(s, new) == CHILD_VALUE and physical_word(s, shared) == PARENT_VALUE
    assert (counts[shared], counts[new]) == (1, 1)
