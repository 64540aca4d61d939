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
