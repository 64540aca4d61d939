"""Timing one command at the current stop, and the raw transfer of the bytes it read
(``scripts/bench --live`` calls these through gdb's Python).

The command runs as a user runs it (``gdb.execute``, its whole text output); the reads it
issued are the session cache's list (the cache starts empty at each stop), the registers it
read first. The floor is those same reads replayed straight through the path in use,
uncached. The bench replays them at a fresh stop of their own (:func:`replay` of ``issued``,
``measure(command, floor=False)``): the command always makes the first transfer after a
stop, and the floor should be measured alike (the replay right after the command,
``floor_ms`` here, ran up to 10 % faster over the gdbstub).
Example, in gdb stopped at a fresh stop::

    (gdb) python import json; from gdb_tinyos.gdb.measure import measure; print(json.dumps(measure("cow-stats")))
    {"command": "cow-stats", "ms": 21.4, "reads": 4, "bytes": 5560184, "floor_ms": 1.3, "path": "shared-ram", ...}
    (gdb) python from gdb_tinyos.gdb.measure import replay; print(replay(issued))   # at the next stop
"""

from __future__ import annotations

import time
from typing import Any

import gdb

from .session import session


def measure(command: str, floor: bool = True) -> dict[str, Any]:
    """Run ``command`` once; its time, output size, reads, bytes and the floor (None when
    ``floor`` is False: the caller replays ``issued`` itself, at a stop of its own)."""
    s = session()
    reads_before, bytes_before = s.target.stats.reads, s.target.stats.bytes
    start = time.perf_counter()
    try:
        out = gdb.execute(command, to_string=True)
        error = None
    except gdb.error as exc:  # cow-check fails when it finds violations: still a measurement
        out, error = "", str(exc)
    ms = (time.perf_counter() - start) * 1000
    issued = [("r", name, 0) for name in s.target.cached_registers()] + s.target.cached_reads()
    return {
        "command": command,
        "ms": ms,
        "lines": out.count("\n"),
        "error": error,
        "reads": s.target.stats.reads - reads_before,
        "bytes": s.target.stats.bytes - bytes_before,
        "floor_ms": replay(issued) if floor else None,  # right after: see the module docstring
        "issued": [list(read) for read in issued],
        "path": s.gdb_target.physical_path()[0],
    }


def replay(reads: list[tuple[str, int | str, int]]) -> float:
    """Milliseconds to make ``reads`` again straight through the target (no cache):
    ``("p" | "v", address, size)`` memory, ``("r", name, 0)`` a register."""
    target = session().gdb_target
    start = time.perf_counter()
    with target.batch():  # as the command's decodes read: QEMU's physical mode switched once
        for space, address, size in reads:
            if space == "r":
                target.read_register(address)
            else:
                (target.read_physical if space == "p" else target.read_virtual)(address, size)
    return (time.perf_counter() - start) * 1000


def raw_read(pa: int, size: int) -> dict[str, Any]:
    """One physical read of ``size`` bytes at ``pa`` through the path in use: the floor of
    reading a whole structure (e.g. the COW manager)."""
    ms = replay([("p", pa, size)])
    return {"command": f"raw read {size} bytes", "ms": ms, "lines": 0, "error": None, "reads": 1, "bytes": size,
            "floor_ms": ms, "issued": [["p", pa, size]], "path": session().gdb_target.physical_path()[0]}


def raw_manager() -> dict[str, Any]:
    """:func:`raw_read` of the whole COW manager static (its PA from the live tables)."""
    from ..aarch64 import translate

    s = session()
    where = s.model().cow_location
    figure = raw_read(translate(s.target, where.address), where.size)
    figure["command"] = f"raw read of the manager ({where.size} bytes)"
    return figure


def manager_capacity() -> int:
    """The number of slots of the manager's page array, from DWARF."""
    return session().model().cow_location.page_fields.count
