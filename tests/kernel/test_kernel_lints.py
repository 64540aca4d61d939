"""The kernel's unsafe boundary is checked by the compiler and by clippy.

The crate root denies `unsafe_op_in_unsafe_fn` (rustc: an unsafe fn's body is not one
big unsafe block) and `clippy::undocumented_unsafe_blocks` (every `unsafe` block and
`unsafe impl` carries a `// SAFETY:` comment). rustc enforces the first on every build;
the second needs clippy, which `scripts/build-kernel --clippy` runs with the kernel's
own build recipe (Debian's rust-web-clippy offline).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DENIED = ("#![deny(unsafe_op_in_unsafe_fn)]", "#![deny(clippy::undocumented_unsafe_blocks)]")


def test_the_crate_root_denies_undocumented_and_implicit_unsafe() -> None:
    root = (ROOT / "kernel" / "src" / "main.rs").read_text()
    attributes = [line.strip() for line in root.splitlines() if line.startswith("#![")]
    assert set(DENIED) <= set(attributes), attributes


def test_clippy_finds_no_undocumented_unsafe_block() -> None:
    result = subprocess.run(
        [str(ROOT / "scripts" / "build-kernel"), "--clippy", "--quiet"],
        capture_output=True, text=True, timeout=900, check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert "missing a safety comment" not in report, report
