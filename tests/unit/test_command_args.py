"""The gdb-free half of the command framework: argparse that raises instead of exiting."""

from __future__ import annotations

import pytest

from gdb_tinyos.gdb.args import (
    CommandParser,
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
        ([], "va2pa: the following arguments are required: va (see `help va2pa`)"),
        (["zz"], "va2pa: argument va: not an address: 'zz' (write it as 0x... or decimal) (see `help va2pa`)"),
        (["0x10000000000000000"], "va2pa: argument va: address 0x10000000000000000 does not fit in 64 bits"),
        (["1", "--bogus"], "va2pa: unrecognized arguments: --bogus (see `help va2pa`)"),
        (["1", "--pid", "x"], "va2pa: argument --pid: invalid int value: 'x'"),
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


def test_options_help_has_usage_and_options_but_not_the_description():
    text = options_help(va2pa_parser())
    assert text.startswith("usage: va2pa [-h] [--json] [--pid PID] va")
    assert "--json" in text and "print the result as JSON" in text
    assert "Translate a virtual address." not in text


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
