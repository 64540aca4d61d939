"""Runs the `tinyos-gdb` console script of the test interpreter's environment, for the
tests of the command line and its scripted walkthrough."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

TINYOS_GDB = Path(sys.executable).with_name("tinyos-gdb")


def tinyos_gdb(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(TINYOS_GDB), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=os.environ)
