"""`--kernel` is checked before QEMU starts: one line naming what the file is instead."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from gdb_tinyos.launcher.cli import main
from gdb_tinyos.launcher.kernel import KernelError, validate_kernel


def test_the_shipped_kernel_passes(tinyos_kernel):
    assert validate_kernel(tinyos_kernel) == tinyos_kernel.resolve()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda tmp: tmp / "missing", "does not exist"),
        (lambda tmp: (tmp / "t.txt", (tmp / "t.txt").write_text("hello"))[0], "is not an ELF file"),
        (lambda tmp: shutil.copyfile(sys.executable, tmp / "python"), "not AArch64"),
    ],
)
def test_wrong_files_are_named(tmp_path, make, message):
    with pytest.raises(KernelError, match=message):
        validate_kernel(make(tmp_path))


def test_a_kernel_without_dwarf_is_refused(tinyos_kernel, tmp_path):
    stripped = tmp_path / "stripped"
    subprocess.run([shutil.which("llvm-strip") or "llvm-strip-14", "-g", "-o", str(stripped), str(tinyos_kernel)], check=True)
    with pytest.raises(KernelError, match=r"no DWARF \(.debug_info\)"):
        validate_kernel(stripped)


def test_tinyos_gdb_says_it_in_one_line_before_starting_qemu(tmp_path, capsys, monkeypatch):
    text = tmp_path / "notes.txt"
    text.write_text("not a kernel")
    monkeypatch.setenv("TINYOS_KERNEL", "/should/not/be/used")
    assert main(["--kernel", str(text)]) == 2
    err = capsys.readouterr().err
    assert err == f"tinyos-gdb: --kernel: {text} is not an ELF file\n"
