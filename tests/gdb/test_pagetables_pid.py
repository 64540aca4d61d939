"""`va2pa --pid/--asid` and `pt --pid` on the real kernel, for every mapped page of every
live process, against references that never go through our walker:

- the page list: the user layout of kernel/src/process/user.rs (code at 0x40_0000, one
  data page at 0x80_0000, the heap from 0x1000_0000 to the BRK `ps` prints, two stack
  pages below 0x7FFF_FFFF_0000) and the user image's size in the kernel ELF;
- the physical address of each page: QEMU's own `gva2gpa` while the process is on the CPU;
  for the others, the kernel's COW bookkeeping (`~1` lists each tracked frame with its
  va/pid pairs) and the page's content read by QEMU's `xp` (code pages hold the user
  image from the ELF; forkpause's heap page i holds i + 1, the child's first one 0xC0DE);
- each process's TTBR0 and ASID as the kernel's `ps` prints them.

The program is forkpause 3 (kernel/src/process/user_programs.S): after step 1 parent and
child share everything; in step 2 the child writes heap page 0 (duplicated)."""

from __future__ import annotations

import json

import pytest
from elftools.elf.elffile import ELFFile

from gdb_tinyos.testing import DebugEvent
from gdb_tinyos.testing.kernel import frame_allocator_expression
from gdb_tinyos.testing.session import kernel_symbol
from gdb_tinyos.testing.shell import cow_status, processes

PAGE = 4096
CODE_VA, DATA_VA, HEAP_VA, STACK_TOP = 0x40_0000, 0x80_0000, 0x1000_0000, 0x7FFF_FFFF_0000
STACK_PAGES = 2
HEAP_PAGES = 3
CHILD_MARK = 0xC0DE  # what forkpause's child writes into heap page 0 in step 2
PARENT, CHILD = 1, 2  # the first program started after boot is pid 1, its fork pid 2


def xp(s, pa: int, count: int) -> bytes:
    """``count`` 64-bit words at physical ``pa`` as QEMU's monitor reads them."""
    return b"".join(w.to_bytes(8, "little") for w in s.xp(pa, count))


def user_image(kernel) -> bytes:
    """The EL0 image every process gets a copy of, from the kernel ELF's loaded bytes."""
    with open(kernel, "rb") as f:
        elf = ELFFile(f)
        symtab = elf.get_section_by_name(".symtab")
        start, end = (symtab.get_symbol_by_name(n)[0]["st_value"]
                      for n in ("tinyos_user_image_start", "tinyos_user_image_end"))
        for seg in elf.iter_segments():
            if seg["p_type"] == "PT_LOAD" and seg["p_vaddr"] <= start and end <= seg["p_vaddr"] + seg["p_filesz"]:
                return seg.data()[start - seg["p_vaddr"] : end - seg["p_vaddr"]]
    raise AssertionError("the user image is not in a loaded segment")


def cow_frames(console) -> dict[tuple[int, int], int]:
    """The kernel's `~1`: (pid, va) -> the tracked frame it records for that mapping."""
    return {(pid, va): page.pa for (va, pid), page in cow_status(console).sharers.items()}


def layout_pages(image_size: int, brk: int) -> list[int]:
    code = [CODE_VA + i * PAGE for i in range(-(-image_size // PAGE))]
    heap = list(range(HEAP_VA, brk, PAGE))
    stack = [STACK_TOP - (i + 1) * PAGE for i in reversed(range(STACK_PAGES))]
    return code + [DATA_VA] + heap + stack


def va2pa(s, va: int, option: str) -> int:
    walk = json.loads(s.gdb.cli(f"va2pa {va:#x} {option} --json"))
    assert walk["fault"] is None and walk["mapping"] is not None, walk
    return int(walk["mapping"]["pa"], 16)


def pt_pages(space: dict) -> list[int]:
    """Every page a `pt --json` address space maps, in VA order."""
    return [va for r in space["ranges"] for va in range(int(r["va_start"], 16), int(r["va_end"], 16), PAGE)]


@pytest.fixture
def forkpause(tinyos_booted):
    """forkpause 3 after step 1 (both paused, everything shared); the console at the prompt."""
    s = tinyos_booted
    assert "process 1 (forkpause) started" in s.shell(f"run forkpause {HEAP_PAGES}", timeout=30)
    return s


def expected_content(pid: int, va: int, image: bytes) -> bytes | None:
    """What the program left in the page at ``va`` (its first bytes), where it is known."""
    if CODE_VA <= va < CODE_VA + len(image):
        offset = va - CODE_VA
        return image[offset : offset + 64]
    if HEAP_VA <= va < HEAP_VA + HEAP_PAGES * PAGE:
        i = (va - HEAP_VA) // PAGE
        value = CHILD_MARK if (pid, i) == (CHILD, 0) else i + 1
        return value.to_bytes(8, "little")
    return None


def test_every_page_of_every_process_matches_the_kernel_and_the_memory(forkpause, tinyos_kernel):
    s = forkpause
    assert "resumed 2 process(es)" in s.shell("cont", timeout=30)  # step 2: the child's write
    table, recorded = processes(s.console), cow_frames(s.console)
    image = user_image(tinyos_kernel)
    s.gdb.interrupt()
    assert sorted(table) == [PARENT, CHILD] and all(p.state == "paused" for p in table.values())
    checked = 0
    for pid, row in table.items():
        pages = layout_pages(len(image), row.brk)
        assert len(pages) == 2 + 1 + HEAP_PAGES + STACK_PAGES
        space = json.loads(s.gdb.cli(f"pt --pid {pid} --json"))
        assert [sp["name"] for sp in space["spaces"]] == ["TTBR0"] and space["process"]["pid"] == pid
        user = space["spaces"][0]
        assert (int(user["root_table"], 16), user["asid"]) == (row.ttbr0, row.asid)
        assert pt_pages(user) == pages  # every mapped page, and nothing else
        for va in pages:
            pa = va2pa(s, va, f"--pid {pid}")
            content = expected_content(pid, va, image)
            assert (pid, va) in recorded or content is not None, f"no reference for pid {pid} va {va:#x}"
            if (pid, va) in recorded:
                assert pa == recorded[(pid, va)], (pid, hex(va))
            if content is not None:
                assert xp(s, pa, len(content) // 8) == content, (pid, hex(va), hex(pa))
            checked += 1
        assert va2pa(s, pages[0], f"--asid {row.asid}") == va2pa(s, pages[0], f"--pid {pid}")
    assert checked == 2 * len(pages)
    # the child's heap page 0 was duplicated, the rest of the heap is still shared
    assert va2pa(s, HEAP_VA, f"--pid {PARENT}") != va2pa(s, HEAP_VA, f"--pid {CHILD}")
    assert va2pa(s, HEAP_VA + PAGE, f"--pid {PARENT}") == va2pa(s, HEAP_VA + PAGE, f"--pid {CHILD}")


def test_the_process_on_the_cpu_agrees_with_qemu_gva2gpa(forkpause, tinyos_kernel):
    s = forkpause
    table = processes(s.console)
    image_size = len(user_image(tinyos_kernel))
    # step 2: the child's write fault, resolved, then the event
    s.run_to_event(DebugEvent.COW_FAULT, action=lambda: s.console.send_line("cont"), timeout=30)
    assert s.gdb.read_register("x1") == CHILD
    assert s.gdb.read_register("TTBR0_EL1") >> 48 == table[CHILD].asid  # the child is on the CPU
    for va in layout_pages(image_size, table[CHILD].brk):
        qemu = s.gva2gpa(va)
        assert va2pa(s, va, f"--pid {CHILD}") == qemu == va2pa(s, va, f"--asid {table[CHILD].asid}"), hex(va)
        assert va2pa(s, va, "") == qemu
    default = json.loads(s.gdb.cli("pt --json"))  # default: the running process's user half
    assert default["process"]["pid"] == CHILD and [sp["name"] for sp in default["spaces"]] == ["TTBR0"]
    assert default["spaces"] == json.loads(s.gdb.cli(f"pt --pid {CHILD} --json"))["spaces"]
    assert s.gdb.cli("pt").startswith(f"pid {CHILD} (forkpause) TTBR0 root {table[CHILD].ttbr0:#x}")
    both = json.loads(s.gdb.cli(f"pt --pid {PARENT} --kernel --json"))
    assert [sp["name"] for sp in both["spaces"]] == ["TTBR0", "TTBR1"] and both["process"]["pid"] == PARENT


def test_unknown_and_dead_pids_are_one_error_listing_the_live_ones(forkpause):
    s = forkpause
    s.shell("cont", timeout=30)
    s.shell("cont", timeout=30)  # step 3: the child exits (a zombie until step 4)
    table = processes(s.console)
    assert table[CHILD].state == "zombie" and table[PARENT].state == "paused"
    s.gdb.interrupt()
    live = f"live pids: {PARENT} (ASID {table[PARENT].asid})"
    for command, message in (
        (f"va2pa 0x400000 --pid {CHILD}", f"pid {CHILD} is zombie: it has no address space; {live}"),
        ("pt --pid 9", f"no process has pid 9; {live}"),
        ("va2pa 0x400000 --asid 200", f"no process has ASID 200; {live}"),
    ):
        assert s.gdb.expect_one_line_error(command) == f"{command.split()[0]}: {message}"
    assert s.gdb.cli("pt").startswith("TTBR1 root")  # no process on the CPU: the kernel half


def test_rams_bounds_come_from_one_read_of_the_allocators_first_bytes(forkpause, tinyos_kernel):
    """What a dump needs of the frame allocator: RAM's bounds, as the kernel's own fields
    give them, read with one read of the allocator's first bytes (not its counts); a
    command that needs the counts (cow-check) reads the allocator once, whole."""
    s = forkpause
    s.gdb.interrupt()
    state = frame_allocator_expression(tinyos_kernel)
    base, count = (int(s.gdb.evaluate(f"{state}.{name}"), 0) for name in ("base_pa", "frame_count"))
    static = state.split(".")[0]
    whole = int(s.gdb.evaluate(f"sizeof({static})"), 0)
    allocator = s.gva2gpa(kernel_symbol(tinyos_kernel, static.split("::")[-1]))  # where QEMU finds it
    session = "__import__('gdb_tinyos.gdb.session', fromlist=['x']).session()"
    s.gdb.cli("stepi")  # a fresh stop: nothing read yet
    assert s.gdb.python_value(f"{session}.state().ram()") == [base, base + count * PAGE]
    reads = [(pa, size) for kind, pa, size in s.gdb.python_value(f"{session}.target.cached_reads()") if kind == "p"]
    at_allocator = [size for pa, size in reads if pa == allocator]
    assert len(at_allocator) == 1 and 16 <= at_allocator[0] < whole, (at_allocator, whole)
    assert not any(pa < allocator + whole and allocator < pa + size for pa, size in reads if pa != allocator)
    s.gdb.cli("stepi")
    assert "cow-check: OK" in s.gdb.cli("cow-check")
    reads = [(pa, size) for kind, pa, size in s.gdb.python_value(f"{session}.target.cached_reads()") if kind == "p"]
    assert [size for pa, size in reads if pa < allocator + whole and allocator < pa + size] == [whole]
