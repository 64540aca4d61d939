"""Which kernel ELF a session debugs: gdb's loaded file, else $TINYOS_KERNEL, else the shipped build.

Example::

    choose_kernel(None, {"TINYOS_KERNEL": "/k/tinyos"})   # KernelChoice(Path('/k/tinyos'), '$TINYOS_KERNEL')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1]


REPO_ROOT = PACKAGE_DIR.parent


SHIPPED_KERNEL = REPO_ROOT / "kernel" / "target" / "aarch64-unknown-none-softfloat" / "release" / "tinyos"


KERNEL_ENV = "TINYOS_KERNEL"


@dataclass(frozen=True)
class KernelChoice:
    """Which kernel ELF the plugin reads, and why that one."""

    path: Path | None
    source: str


def choose_kernel(gdb_file: str | None, environ: Mapping[str, str]) -> KernelChoice:
    """gdb's loaded file wins, then $TINYOS_KERNEL, then the shipped release build."""
    if gdb_file:
        return KernelChoice(Path(gdb_file), "gdb's loaded file")
    if environ.get(KERNEL_ENV):
        return KernelChoice(Path(environ[KERNEL_ENV]), f"${KERNEL_ENV}")
    if SHIPPED_KERNEL.is_file():
        return KernelChoice(SHIPPED_KERNEL, "shipped build")
    return KernelChoice(None, "no ELF loaded, no $TINYOS_KERNEL, no shipped build")
