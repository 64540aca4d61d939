"""The loader and the command framework inside a real gdb-multiarch (through the harness).

Expected texts come from the contracts the plugin promises users: one line per failure,
no Python traceback, the fix named in the message, loading twice changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

import gdb_tinyos
from gdb_tinyos.testing import GdbCommandError
from gdb_tinyos.testing.gdbmi import GdbSession

LOADER = Path(gdb_tinyos.__file__).resolve().parent / "gdbinit.py"
NOT_CONNECTED = "not connected to a target: use `target remote 127.0.0.1:PORT`"


@pytest.fixture
def gdb(tinyos_kernel):
    """gdb with the kernel's symbols and the plugin, not connected to any target."""
    with GdbSession() as g:
        g.file(tinyos_kernel)
        g.loaded = g.source(LOADER)
        yield g


def python(g: GdbSession, statement: str) -> str:
    return g.cli(f"python {statement}")


def test_loading_says_which_kernel_it_reads(gdb, tinyos_kernel):
    lines = gdb.loaded.strip().splitlines()
    assert len(lines) == 1
    assert f"kernel ELF: {tinyos_kernel} [gdb's loaded file]" in lines[0]


def test_loading_twice_registers_nothing_twice(gdb):
    count = "import gdb_tinyos.gdb.events as e, gdb_tinyos.gdb.registry as r; print(len(e._CONNECTED), len(r.registered_names()))"
    before = python(gdb, count)
    assert gdb.source(LOADER) == ""  # quiet the second time
    assert python(gdb, count) == before
    assert "tinyos-info" in gdb.cli("help user-defined")


def test_the_cow_prefix_lists_its_family(gdb):
    text = gdb.cli("help cow")
    assert "List of cow subcommands" in text


def test_help_is_the_docstring_with_usage_and_options(gdb):
    text = gdb.cli("help va2pa")
    assert text.startswith("Translate a virtual address through the page tables")
    assert "Example:" in text
    assert text.count("Usage: va2pa VA") == 1 and "usage:" not in text and "-h, --help" not in text
    assert "  --pid N" in text or "--pid PID" in text


def test_commands_needing_a_target_say_how_to_connect_in_one_line(gdb):
    for command in ("pt", "va2pa 0xffff000040080000", "tinyos-dump /tmp/never.core"):
        assert gdb.expect_one_line_error(command) == f"{command.split()[0]}: {NOT_CONNECTED}"


def test_info_works_without_a_target(gdb):
    text = gdb.cli("tinyos-info")
    assert f"target:          {NOT_CONNECTED}" in text


def test_bad_arguments_are_one_usage_line(gdb):
    assert gdb.expect_one_line_error("pt --bogus") == "pt: unrecognized option at: --bogus; see `help pt`"
    message = gdb.expect_one_line_error("va2pa nowhere")
    assert message.startswith("va2pa: VA: not an address: No symbol \"nowhere\" in current context")


def test_help_flag_prints_usage_and_is_not_an_error(gdb):
    assert "usage: pt" in gdb.cli("pt --help")


def test_an_unexpected_crash_is_one_line_with_the_way_to_the_traceback(gdb, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text(
        "from gdb_tinyos.gdb.base import TinyOSCommand\n"
        "class Broken(TinyOSCommand):\n"
        "    'Always fails.'\n"
        "    name = 'tinyos-broken'\n"
        "    def run(self, s, args):\n"
        "        return 1 // 0\n"
        "Broken()\n"
    )
    gdb.source(broken)
    assert gdb.expect_one_line_error("tinyos-broken") == (
        "tinyos-broken: internal error (ZeroDivisionError: integer division or modulo by zero); "
        "`set python print-stack full` and rerun for the traceback"
    )
    gdb.cli("set python print-stack full")
    with pytest.raises(GdbCommandError) as err:
        gdb.cli("tinyos-broken")
    assert "Traceback" in err.value.log  # now the user asked for it


def test_mi_commands_return_the_model(gdb, tinyos_kernel):
    result = gdb.mi("-tinyos-info")["result"]
    assert result["kernel_elf"] == str(tinyos_kernel)
    assert result["target"] == "not connected" and result["connection"] == ""
    assert result["cpu"] == ""  # None in the model


def test_missing_dependencies_are_one_line_naming_the_fix(tmp_path, monkeypatch):
    # gdb's python3.11 sees the project's packages only through the venv the loader adds;
    # an empty $TINYOS_VENV hides them.
    monkeypatch.setenv("TINYOS_VENV", str(tmp_path))
    with GdbSession() as g:
        out = g.execute(f"-interpreter-exec console \"source {LOADER}\"")
    text = (out.console + out.log).strip()
    site = tmp_path / "lib" / "python3.11" / "site-packages"
    assert text == (
        "tinyos: cannot load, missing Python package(s) pyelftools, tabulate for gdb's python3.11: "
        f"run ./scripts/test or pip install gdb-tinyos into {site} (or set $TINYOS_VENV)"
    )
