"""The kernel's hardware-free COW bookkeeping and spin lock, proven on the host.

kernel/hosttest compiles kernel/src/memory/cow.rs and kernel/src/sync.rs for the host
(by path, so the code tested is the code the kernel runs) and checks them with
`cargo test`: reference counts equal live mappings, statistics stay true, refused
requests change nothing, a lock taken twice panics instead of hanging.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

HOSTTEST = Path(__file__).resolve().parents[2] / "kernel" / "hosttest"


def _host_cargo() -> tuple[str, dict[str, str]]:
    """cargo plus an environment that builds for the host, offline."""
    env = dict(os.environ)
    # The kernel build's variables must not leak into a host build.
    for name in ("RUSTC_BOOTSTRAP", "CARGO_BUILD_TARGET", "RUSTFLAGS"):
        env.pop(name, None)
    env["CARGO_TARGET_DIR"] = str(HOSTTEST.parent / "target" / "hosttest")
    cargo = shutil.which("cargo")
    if cargo is None:
        # Debian's cargo-web (installed by scripts/test) with its own rustc.
        cargo = "/usr/bin/cargo"
        env.setdefault("RUSTC", "/usr/bin/rustc")
    return cargo, env


def test_cow_bookkeeping_and_spin_lock_host_tests_pass() -> None:
    cargo, env = _host_cargo()
    result = subprocess.run(
        [cargo, "test", "--offline", "--quiet"],
        cwd=HOSTTEST,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    # Both suites (cow, sync) ran tests: an empty run would also exit 0.
    suites_with_tests = [int(n) for n in re.findall(r"(\d+) passed", report) if int(n) > 0]
    assert len(suites_with_tests) >= 2, report
