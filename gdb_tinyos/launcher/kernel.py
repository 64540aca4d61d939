"""Which kernel ELF a session debugs: gdb's loaded file, else $TINYOS_KERNEL, else the shipped build.

Example::

    choose_kernel(None, {"TINYOS_KERNEL": "/k/tinyos"})   # KernelChoice(Path('/k/tinyos'), '$TINYOS_KERNEL')
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .errors import LaunchError


class KernelError(LaunchError):
    """The kernel ELF given is unusable (missing, not ELF, not AArch64, no DWARF)."""


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


def validate_kernel(path: Path) -> Path:
    """``path`` resolved, once it is an AArch64 executable ELF with DWARF; else KernelError
    saying in one line what it is instead. Checked before QEMU starts: QEMU's own error for a
    wrong file is obscure, and the plugin must never fall back to another kernel."""
    from elftools.common.exceptions import ELFError  # noqa: PLC0415
    from elftools.elf.elffile import ELFFile  # noqa: PLC0415

    if not path.is_file():
        raise KernelError(f"kernel ELF {path} does not exist (or is not a file)")
    try:
        with open(path, "rb") as f:
            if f.read(4) != b"\x7fELF":
                raise KernelError(f"{path} is not an ELF file")
            f.seek(0)
            elf = ELFFile(f)
            machine, kind = elf.header["e_machine"], elf.header["e_type"]
            has_dwarf = elf.get_section_by_name(".debug_info") is not None
    except OSError as exc:
        raise KernelError(f"cannot read the kernel ELF {path}: {exc.strerror}") from None
    except ELFError as exc:
        raise KernelError(f"{path} is not a readable ELF file: {exc}") from None
    if machine != "EM_AARCH64":
        raise KernelError(f"{path} is an ELF for {machine.removeprefix('EM_')}, not AArch64")
    if kind != "ET_EXEC":
        raise KernelError(f"{path} is not an executable ELF ({kind}): pass the linked kernel")
    if not has_dwarf:
        raise KernelError(f"{path} has no DWARF (.debug_info): build it with debug info (scripts/build-kernel does)")
    return path.resolve()
