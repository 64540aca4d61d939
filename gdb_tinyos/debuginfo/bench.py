"""Debug-info load time, cold and from the build-id cache, for scripts/bench.

    python -m gdb_tinyos.debuginfo.bench ELF [STATIC...]

prints ``debuginfo: cold X ms, cached Y ms (...)``. A load is what a gdb session does
first: open the ELF and resolve the layouts of the statics the decoders read (by default
those of the debugger contract that the ELF has). Each figure is the median of three runs;
a cold run starts from an empty cache directory.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from ..core.errors import SymbolError
from .info import DebugInfo

CONTRACT_STATICS = ("tinyos::memory::cow::COW_MANAGER", "tinyos::memory::frame::FRAME_ALLOCATOR", "tinyos::process::PROCESSES")
FIXTURE_STATICS = ("memory::cow::COW_MANAGER", "memory::cow::manager::LOCKED_COW_MANAGER")
RUNS = 3


def load(elf: Path, cache_dir: Path, statics: list[str]) -> tuple[float, bool]:
    """Seconds to open ``elf`` and resolve ``statics``; and whether the cache served it."""
    start = time.perf_counter()
    with DebugInfo.open(elf, cache_dir=cache_dir) as info:
        for name in statics:
            info.static(name)
        from_cache = info.from_cache
    return time.perf_counter() - start, from_cache


def present_statics(elf: Path, candidates: tuple[str, ...]) -> list[str]:
    with DebugInfo.open(elf, cache_dir=None) as info:
        found = []
        for name in candidates:
            try:
                info.symbol(name)
            except SymbolError:
                continue
            found.append(name)
        return found


def measure(elf: Path, statics: list[str]) -> tuple[float, float]:
    """Median cold and cached load times in milliseconds."""
    cold, cached = [], []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as tmp:
            cold.append(load(elf, Path(tmp), statics)[0])
            seconds, hit = load(elf, Path(tmp), statics)
            if not hit:
                raise RuntimeError(f"the debug-info cache in {tmp} was not used: nothing to measure")
            cached.append(seconds)
    return statistics.median(cold) * 1000, statistics.median(cached) * 1000


def figure(elf: Path, statics: list[str] | None = None) -> str:
    """The ``debuginfo: cold X ms, cached Y ms (...)`` line for ``elf``."""
    statics = statics or present_statics(elf, CONTRACT_STATICS) or present_statics(elf, FIXTURE_STATICS)
    cold_ms, cached_ms = measure(elf, statics)
    size_mb = elf.stat().st_size / 1e6
    return (f"debuginfo: cold {cold_ms:.0f} ms, cached {cached_ms:.0f} ms "
            f"({elf.name}, {size_mb:.1f} MB, statics: {', '.join(statics) or 'none'})")


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    print(figure(Path(argv[1]), argv[2:]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
