"""Argument parsing for gdb commands, without gdb: argparse that never exits the process.

Plain argparse calls ``sys.exit`` on ``--help`` and on bad arguments, which inside gdb
would raise SystemExit through the Python layer. :class:`CommandParser` raises
:class:`UsageError` (one line) or :class:`HelpShown` instead; the command boundary turns
the first into ``gdb.GdbError`` and swallows the second.

Example::

    p = CommandParser(prog="va2pa", description="Translate a virtual address.")
    p.add_argument("va", type=address)
    p.parse(["0xffff000040080000"]).va   # -> 0xffff000040080000
    p.parse([])                          # raises UsageError("va2pa: the following arguments are required: va ...")
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import NoReturn

from ..core.errors import TinyOSError


class UsageError(TinyOSError):
    """The command line does not match the command's parser."""


class HelpShown(Exception):
    """``--help`` was given and printed: the command has nothing else to do."""


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are exceptions and whose help goes to gdb's output.

    Every command parser has ``--json``: the same model, machine-readable."""

    def __init__(self, *args, json_flag: bool = True, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(*args, exit_on_error=False, **kwargs)
        if json_flag:
            self.add_argument("--json", action="store_true", help="print the result as JSON")

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        try:
            return self.parse_args(list(argv))
        except argparse.ArgumentError as exc:
            # exit_on_error=False surfaces some errors as ArgumentError instead of error().
            self.error(str(exc))

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message} (see `help {self.prog}`)")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError(message.strip() if message else f"{self.prog}: invalid arguments")
        raise HelpShown()


def options_help(parser: argparse.ArgumentParser) -> str:
    """Usage line and option list without the description (gdb shows the docstring above it)."""
    # argparse has no public call for this part alone; format_help builds it the same way.
    formatter = parser._get_formatter()
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    for group in parser._action_groups:
        formatter.start_section(group.title)
        formatter.add_arguments(group._group_actions)
        formatter.end_section()
    return formatter.format_help().rstrip()


def address(text: str) -> int:
    """argparse type for addresses: hex with ``0x``, decimal, ``_`` separators allowed."""
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address: {text!r} (write it as 0x... or decimal)") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"address {text} does not fit in 64 bits")
    return value


def one_line(message: str) -> str:
    """``message`` as the single line gdb shows for a failed command.

    gdb's own errors can span lines (an error followed by its context); gdb prints a
    ``GdbError`` as is, so later lines would read as unrelated output. The first non-empty
    line carries the sentence."""
    return next((line.strip() for line in message.splitlines() if line.strip()), message.strip())


def unexpected_failure_message(command: str, exc: BaseException) -> str:
    """The one line shown for a bug (an exception no layer expected), with the way to see more."""
    detail = one_line(str(exc)) if str(exc) else ""
    what = f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__
    return (
        f"{command}: internal error ({what}); "
        "`set python print-stack full` and rerun for the traceback"
    )
