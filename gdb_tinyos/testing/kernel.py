"""Where the kernel ELF under test comes from: $TINYOS_KERNEL, or this repository's
scripts/build-kernel (which prints the path of the ELF it built)."""

from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path

from gdb_tinyos.testing.errors import KernelBuildError, ToolMissing

KERNEL_ENV = "TINYOS_KERNEL"
REPO_ROOT = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "scripts" / "build-kernel"


def kernel_path() -> Path:
    """The kernel ELF to test: $TINYOS_KERNEL if set, otherwise the one built (once per
    process) by scripts/build-kernel --quiet."""
    explicit = os.environ.get(KERNEL_ENV)
    if explicit:
        return existing_kernel(explicit, f"${KERNEL_ENV}")
    return _built_kernel()


def existing_kernel(path: str | os.PathLike[str], source: str) -> Path:
    """``path`` as an absolute Path, or ToolMissing saying where the bad path came from."""
    kernel = Path(path).expanduser().resolve()
    if not kernel.is_file():
        raise ToolMissing(f"the kernel ELF {kernel} given by {source} does not exist.")
    return kernel


@functools.cache
def _built_kernel() -> Path:
    if not BUILD_SCRIPT.is_file():
        raise ToolMissing(f"no kernel given: set ${KERNEL_ENV} or pass --tinyos-kernel PATH (there is no {BUILD_SCRIPT}).")
    result = subprocess.run([str(BUILD_SCRIPT), "--quiet"], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise KernelBuildError(f"{BUILD_SCRIPT} failed with status {result.returncode}:\n{result.stderr.strip()}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    if not lines:
        raise KernelBuildError(f"{BUILD_SCRIPT} printed no kernel path.")
    return existing_kernel(lines[-1].strip(), str(BUILD_SCRIPT))


def frame_allocator_expression(kernel: Path) -> str:
    """The gdb expression of the frame allocator's state (the struct holding ``ref_counts``),
    e.g. ``tinyos::memory::frame::FRAME_ALLOCATOR.data.value``: found in the static's DWARF
    the way the plugin finds it (:func:`gdb_tinyos.tinyos.frames.locate_frames`), so a
    test follows whatever lock or cell the kernel wraps it in.

    Example::

        counts = f"{frame_allocator_expression(kernel)}.ref_counts"
    """
    from gdb_tinyos.debuginfo import DebugInfo
    from gdb_tinyos.tinyos.frames import locate_frames

    with DebugInfo.open(kernel) as info:
        where = locate_frames(info)
        root = info.static(where.symbol).layout
    return where.symbol + "".join(f".{name}" for name in _member_path(root, where.found.offset, where.found.struct))


def _member_path(t, offset: int, target) -> list[str]:
    """Member names from ``t`` down to the struct ``target`` at byte ``offset`` (plain
    struct members only: gdb cannot name a path through an enum variant)."""
    from gdb_tinyos.core.errors import LayoutError
    from gdb_tinyos.debuginfo import StructType

    t = t.strip_typedefs()
    if t is target or (offset == 0 and t == target):
        return []
    if isinstance(t, StructType) and not t.is_union:
        for m in t.members:
            if m.offset <= offset < m.offset + max(m.type.size, 1):
                try:
                    return [m.name, *_member_path(m.type, offset - m.offset, target)]
                except LayoutError:
                    continue
    raise LayoutError(f"no member path from {t.name} to {target.name} at +{offset:#x}")
