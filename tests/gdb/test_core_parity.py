"""A core dump taken mid-scenario decodes to the same model as the live session.

Mid-scenario: forkpause 3 (kernel/src/process/user_programs.S) after its fork and the
child's write to heap page 0, so the CowManager tracks pages, one of them duplicated. The
same decoders run twice over the same kernel ELF: inside gdb on the live target, then
offline in plain Python on `tinyos-dump`'s core (CoreTarget); their JSON faces must be
equal, field for field, for the COW manager, the frame allocator, the process table and
every live process's user address space plus the kernel half."""

from __future__ import annotations

import json

from gdb_tinyos.aarch64.coredump import CoreTarget
from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.tinyos.state import KERNEL_HALF, KernelModel, KernelState

# Defined once, run in both places: inside gdb (sourced) and here (exec).
SNAPSHOT = '''
from gdb_tinyos.core.render import to_json


def snapshot(view):
    table = view.processes()
    return to_json({
        "cow": view.cow(),
        "frames": view.frames(),
        "processes": table,
        "spaces": {p.pid: view.address_space(p) for p in table.live()},
        "kernel": view.address_space(None, KERNEL_HALF),
    })
'''
LIVE = '''
from pathlib import Path
from gdb_tinyos.gdb.session import session
Path({out!r}).write_text(snapshot(session().state()))
'''
HEAP_PAGES = 3
# forkpause 3 after fork: 3 heap + 1 data + 2 stack pages shared (6 tracked frames); the
# child's write gave it a copy of heap page 0 and left the parent's frame tracked alone.
TRACKED_FRAMES = HEAP_PAGES + 1 + 2


def offline_snapshot(core: CoreTarget, kernel) -> dict:
    namespace = {"KERNEL_HALF": KERNEL_HALF}
    exec(SNAPSHOT, namespace)
    with DebugInfo.open(kernel) as info:
        return json.loads(namespace["snapshot"](KernelState(KernelModel(info), core)))


def test_core_dump_decodes_to_the_live_model(tinyos_booted, tinyos_kernel, tmp_path):
    s = tinyos_booted
    s.shell(f"run forkpause {HEAP_PAGES}", timeout=30)
    assert "resumed 2 process(es)" in s.shell("cont", timeout=30)
    s.gdb.interrupt()

    live_json, script = tmp_path / "live.json", tmp_path / "live_snapshot.py"
    script.write_text(f"KERNEL_HALF = {KERNEL_HALF}\n" + SNAPSHOT + LIVE.format(out=str(live_json)))
    s.gdb.source(script)
    live = json.loads(live_json.read_text())
    core_path = tmp_path / "mid.core"
    s.gdb.cli(f"tinyos-dump {core_path}", timeout=60)

    with CoreTarget(core_path, kernel_elf=tinyos_kernel) as core:
        offline = offline_snapshot(core, tinyos_kernel)

    # the state is the mid-scenario one, not an empty kernel
    assert live["cow"]["active_pages"] == TRACKED_FRAMES and live["cow"]["statistics"]["pages_duplicated"] == 1
    assert sorted(live["spaces"]) == ["1", "2"] and all(sp["ranges"] for sp in live["spaces"].values())
    for part in ("cow", "frames", "processes", "spaces", "kernel"):
        assert offline[part] == live[part], part
