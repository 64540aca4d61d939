"""A frame shared by as many mappings as a `CowPage` records (the seed's `SimpleVec` holds
8, facts.md section 3): `~3` must refuse one more sharer and change nothing, never hand
the destination a private copy while reporting a copy-on-write share."""

from __future__ import annotations

import re

from user_layout import PAGE, USER_HEAP_START

from gdb_tinyos.testing import QemuMachine
from gdb_tinyos.testing.shell import cow_status, mem, run

# SimpleVec<T> { data: [T; 8], len } in the seed's CowPage.
MAPPINGS_PER_FRAME = 8
FIRST_DST_VA = 0x3000_0000


def test_create_refuses_a_mapping_beyond_capacity_and_changes_nothing(tinyos_machine: QemuMachine) -> None:
    m = tinyos_machine
    src = run(m.console, "run idle").pid
    dst = run(m.console, "run idle").pid
    dst_vas = [FIRST_DST_VA + i * PAGE for i in range(MAPPINGS_PER_FRAME)]
    # The source's heap page plus 7 destination pages: the frame's 8 mappings.
    for va in dst_vas[:-1]:
        out = m.console.command(f"~3 {USER_HEAP_START:#x} {va:#x} {src} {dst}")
        assert "COW mapping created successfully" in out.splitlines(), out
    page = cow_status(m.console).sharer(USER_HEAP_START, src)
    assert page.refs == MAPPINGS_PER_FRAME
    before = (cow_status(m.console), mem(m.console))

    out = m.console.command(f"~3 {USER_HEAP_START:#x} {dst_vas[-1]:#x} {src} {dst}")

    assert re.fullmatch(rf"error: ~3: frame 0x{page.pa:X} already has {MAPPINGS_PER_FRAME} mappings", out.strip()), out
    # Nothing mapped at the destination: no frame taken for a copy, the share unchanged.
    assert (cow_status(m.console), mem(m.console)) == before
    m.console.command(f"kill {src}")
    m.console.command(f"kill {dst}")
