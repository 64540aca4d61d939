"""The gdb-free half of the command framework: argparse that raises instead of exiting."""

from __future__ import annotations

import pytest

from pathlib import Path

from gdb_tinyos.gdb.args import (
    EXPRESSION,
    FILENAME,
    CommandParser,
    completes_with,
    completions,
    context_dependent,
    local_path,
    seconds,
    HelpShown,
    UsageError,
    address,
    one_line,
    options_help,
    unexpected_failure_message,
)
from gdb_tinyos.core.errors import TinyOSError


def va2pa_parser() -> CommandParser:
    p = CommandParser(prog="va2pa", description="Translate a virtual address.")
    p.add_argument("va", type=address)
    p.add_argument("--pid", type=int)
    return p


def test_every_parser_has_json():
    assert va2pa_parser().parse(["0x1000", "--json"]).json is True
    assert va2pa_parser().parse(["0x1000"]).json is False
    assert not hasattr(CommandParser(prog="x", json_flag=False).parse([]), "json")


def test_addresses_accept_hex_decimal_and_underscores():
    p = va2pa_parser()
    assert p.parse(["0xffff_0000_4008_0000"]).va == 0xFFFF_0000_4008_0000
    assert p.parse(["4096"]).va == 4096


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        ([], "va2pa: argument required: VA; see `help va2pa`"),
        (["zz"], "va2pa: VA: not an address: 'zz' (write it as 0x... or decimal); see `help va2pa`"),
        (["0x10000000000000000"], "va2pa: VA: address 0x10000000000000000 does not fit in 64 bits"),
        (["1", "--bogus"], "va2pa: unrecognized option at: --bogus; see `help va2pa`"),
        (["1", "2"], "va2pa: junk at end of arguments: 2; see `help va2pa`"),
        (["1", "--pid", "x"], "va2pa: --pid: invalid number \"x\"; see `help va2pa`"),
        (["1", "--pid"], "va2pa: --pid: argument required; see `help va2pa`"),
        (["1", "--pid", "1", "--pid", "2"], "va2pa: --pid: given twice; see `help va2pa`"),
        (["1", "--json", "--json"], "va2pa: --json: given twice; see `help va2pa`"),
    ],
)
def test_bad_arguments_raise_one_line_usage_errors(argv, message):
    with pytest.raises(UsageError) as err:
        va2pa_parser().parse(argv)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)
    assert isinstance(err.value, TinyOSError)  # converted at the boundary like every typed error


def test_help_prints_and_stops_without_exiting(capsys):
    with pytest.raises(HelpShown):
        va2pa_parser().parse(["--help"])
    assert "usage: va2pa" in capsys.readouterr().out


def test_options_help_lists_options_without_usage_help_or_description():
    text = options_help(va2pa_parser())
    assert text.startswith("arguments:\n  va")
    assert "--json" in text and "print the result as JSON" in text
    assert "Translate a virtual address." not in text
    # The docstring's Usage: line is the only usage; -h works but is not advertised.
    assert "usage:" not in text.lower() and "-h" not in text


def test_choices_and_exclusive_options_in_the_plugins_words():
    p = CommandParser(prog="pt")
    p.add_argument("--filter", nargs="+", choices=["user", "kernel"])
    which = p.add_mutually_exclusive_group()
    which.add_argument("--pid", type=int)
    which.add_argument("--user", action="store_true")
    with pytest.raises(UsageError, match=r'^pt: --filter: invalid choice "usr"; choose from user, kernel; see `help pt`$'):
        p.parse(["--filter", "usr"])
    with pytest.raises(UsageError, match=r"^pt: --user cannot be combined with --pid; see `help pt`$"):
        p.parse(["--pid", "1", "--user"])
    with pytest.raises(UsageError, match=r"^pt: --user: given twice"):
        p.parse(["--user", "--user"])


@pytest.mark.parametrize("text", ["0", "-1", "nan", "inf", "3601", "soon"])
def test_timeouts_must_be_positive_and_bounded(text):
    p = CommandParser(prog="cow-test")
    p.add_argument("--timeout", type=seconds(3600))
    with pytest.raises(UsageError, match=r"^cow-test: --timeout: .* more than 0 and at most 3600; see"):
        p.parse(["--timeout", text])
    assert p.parse(["--timeout", "0.3"]).timeout == 0.3


def pt_like() -> CommandParser:
    p = CommandParser(prog="pt")
    p.add_argument("--filter", nargs="+", choices=["user", "kernel", "writable"])
    p.add_argument("--pid", type=int)
    p.add_argument("--range", nargs=2, type=address)
    p.add_argument("action", nargs="?", choices=["on", "off"])
    return p


@pytest.mark.parametrize(("text", "word", "expected"), [
    ("--fi", "fi", ["filter"]),              # gdb breaks words at '-': only "fi" is replaced
    ("--", "", ["filter", "json", "pid", "range"]),
    ("--filter ", "", ["user", "kernel", "writable"]),
    ("--filter user w", "w", ["writable"]),
    ("", "", ["on", "off", "--filter", "--json", "--pid", "--range"]),
    ("o", "o", ["on", "off"]),
    ("--pid ", "", []),                      # plain int: nothing to offer
])
def test_completions_from_the_parser(text, word, expected):
    assert completions(pt_like(), text, word) == expected


def test_completions_name_gdbs_completer_for_files_and_expressions():
    p = CommandParser(prog="tinyos-dump")
    p.add_argument("file", type=local_path)
    p.add_argument("--at", type=completes_with(EXPRESSION)(address))
    assert completions(p, "/tmp/co", "co") == FILENAME
    assert completions(p, "x --at $s", "s") == EXPRESSION


def test_local_paths_are_absolute_against_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert local_path("a.core") == tmp_path / "a.core"
    assert local_path("/tmp/a.core 0x40000000 0x1000") == Path("/tmp/a.core 0x40000000 0x1000")
    with pytest.raises(Exception, match="not a usable file name"):
        local_path("a\nb")


def test_unexpected_failures_become_one_line_with_the_way_to_the_traceback():
    msg = unexpected_failure_message("cow-status", ValueError("bad frame count\nsecond line"))
    assert msg == (
        "cow-status: internal error (ValueError: bad frame count); "
        "`set python print-stack full` and rerun for the traceback"
    )
    assert unexpected_failure_message("pt", ZeroDivisionError()).startswith("pt: internal error (ZeroDivisionError)")


@pytest.mark.parametrize("message, line", [
    ("Cannot access memory at address 0x0", "Cannot access memory at address 0x0"),
    ("\n  first sentence.\ncontext the user did not ask for\n", "first sentence."),
    ("", ""),
])
def test_one_line_keeps_the_first_non_empty_line(message, line):
    assert one_line(message) == line


def counting_parser(calls: list[str], *, dependent: bool = False) -> CommandParser:
    """A parser whose number converter records each text it converts (and, ``dependent``,
    says its value depends on more than the text, as a gdb expression's does)."""
    def number(text: str) -> int:
        calls.append(text)
        if dependent:
            context_dependent()
        return int(text, 0)

    p = CommandParser(prog="pt", description="Dump tables.")
    p.add_argument("--pid", type=number)
    p.add_argument("--filter", nargs="+")
    return p


def test_a_command_line_seen_before_is_not_parsed_again():
    calls: list[str] = []
    p = counting_parser(calls)
    first = p.parse(["--pid", "0x1", "--filter", "uw"])
    again = p.parse(["--pid", "0x1", "--filter", "uw"])
    assert vars(first) == vars(again) == {"pid": 1, "filter": ["uw"], "json": False}
    assert calls == ["0x1"]  # converted once
    again.filter.append("kx")  # each run has its own namespace, lists included
    assert p.parse(["--pid", "0x1", "--filter", "uw"]).filter == ["uw"]
    assert p.parse(["--pid", "2"]).pid == 2 and calls == ["0x1", "2"]


def test_values_that_depend_on_more_than_their_text_are_converted_each_time(tmp_path, monkeypatch):
    calls: list[str] = []
    p = counting_parser(calls, dependent=True)
    assert [p.parse(["--pid", "5"]).pid for _ in range(2)] == [5, 5]
    assert calls == ["5", "5"]
    paths = CommandParser(prog="tinyos-dump", description="Dump.")
    paths.add_argument("file", type=local_path)
    for where in (tmp_path / "a", tmp_path / "b"):  # `cd` between two identical lines
        where.mkdir()
        monkeypatch.chdir(where)
        assert paths.parse(["core.bin"]).file == where / "core.bin"


def test_errors_are_raised_again_for_a_line_seen_before():
    p = counting_parser([])
    for _ in range(2):
        with pytest.raises(UsageError, match="--pid"):
            p.parse(["--pid", "x"])
