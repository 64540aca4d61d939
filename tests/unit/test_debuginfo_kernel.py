"""The real kernel: every line of its `layout` shell command (the compiler's size_of,
align_of and offset_of! for the structs the debugger decodes) agrees with the layouts
read from the kernel ELF's DWARF."""

from __future__ import annotations

import re
import warnings

from gdb_tinyos.debuginfo import DebugInfo
from gdb_tinyos.core.errors import LayoutError

LINE = re.compile(
    r"^layout (?P<type>[^ .]+)(?:\.(?P<field>\S+) offset=(?P<offset>\d+) size=(?P<fsize>\d+)"
    r"| size=(?P<size>\d+) align=(?P<align>\d+))$"
)
# Types behind the debugger contract's statics (FRAME_ALLOCATOR, COW_MANAGER, PROCESSES):
# always in DWARF, because the statics hold values of them.
REQUIRED = {
    "SpinLock<Frames>", "Frames", "SpinLock<CowManager>", "CowManager", "CowPage", "Option<CowPage>",
    "CowStatistics", "SimpleVec<u64>", "SimpleVec<usize>", "RegionType", "Process",
}


def test_kernel_layout_report_agrees_with_dwarf(tinyos_kernel, tinyos_machine, tmp_path):
    out = tinyos_machine.console.command("layout", timeout=20)
    parsed = [(line, LINE.match(line)) for line in out.splitlines() if line.startswith("layout ")]
    assert parsed and all(m for _, m in parsed), out
    checked, absent = set(), set()
    with DebugInfo.open(tinyos_kernel, cache_dir=tmp_path) as info:
        for line, m in parsed:
            try:
                layout = info.type(m["type"])
            except LayoutError:
                # rustc emits no DWARF for a type no value in the image has (only used
                # through size_of/offset_of!); the debugger then has nothing to decode.
                absent.add(m["type"])
                continue
            if m["field"]:
                offset, field = layout.member_path(m["field"])
                assert (offset, field.size) == (int(m["offset"]), int(m["fsize"])), line
            else:
                assert (layout.size, layout.align) == (int(m["size"]), int(m["align"])), line
            checked.add(m["type"])
    assert REQUIRED <= checked, f"required types missing from DWARF: {REQUIRED - checked}"
    if absent:
        warnings.warn(f"kernel reports layouts of types with no DWARF in the image: {sorted(absent)}")
