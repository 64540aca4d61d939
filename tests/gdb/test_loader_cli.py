"""`tinyos-gdb` end to end: QEMU + gdb-multiarch + plugin + the scripted walkthrough.

Expected values: the build-id read from the ELF with pyelftools, the shell's boot banner
(kernel contract), gdb's batch-mode exit status rules."""

from __future__ import annotations

from pathlib import Path

from cli_runner import tinyos_gdb
from elftools.elf.elffile import ELFFile


def build_id(elf: Path) -> str:
    with open(elf, "rb") as f:
        note = next(n for n in ELFFile(f).get_section_by_name(".note.gnu.build-id").iter_notes())
    return note["n_desc"]


def test_batch_walkthrough_reaches_the_shell_and_exits_0(tinyos_kernel):
    run = tinyos_gdb("--batch", "--kernel", str(tinyos_kernel))
    out = run.stdout + run.stderr
    assert run.returncode == 0, out
    assert f"kernel ELF: {tinyos_kernel} [gdb's loaded file]" in out
    assert "Temporary breakpoint 1, tinyos::shell::run ()" in out
    assert f"build-id:        {build_id(tinyos_kernel)} (matches the running kernel)" in out
    assert "MMU:             on" in out
    assert "TinyOS " in run.stderr and "tinyos>" in run.stderr  # the serial console, printed after the batch


def test_a_failing_script_fails_the_batch(tinyos_kernel, tmp_path):
    bad = tmp_path / "bad.gdb"
    bad.write_text("pt --no-such-option\n")
    run = tinyos_gdb("--batch", "--kernel", str(tinyos_kernel), "-x", str(bad))
    assert run.returncode != 0
    assert "pt: unrecognized option at: --no-such-option; see `help pt`" in run.stderr


def test_a_missing_kernel_is_one_line(tmp_path):
    run = tinyos_gdb("--batch", "--kernel", str(tmp_path / "none.elf"))
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"tinyos-gdb: --kernel: kernel ELF {tmp_path / 'none.elf'} does not exist (or is not a file)"
    ]
