"""Argument parsing for gdb commands, without gdb: argparse that never exits the process.

Plain argparse calls ``sys.exit`` on ``--help`` and on bad arguments, which inside gdb
would raise SystemExit through the Python layer. :class:`CommandParser` raises
:class:`UsageError` (one line) or :class:`HelpShown` instead; the command boundary turns
the first into ``gdb.GdbError`` and swallows the second.

Example::

    p = CommandParser(prog="va2pa", description="Translate a virtual address.")
    p.add_argument("va", type=address)
    p.parse(["0xffff000040080000"]).va   # -> 0xffff000040080000
    p.parse([])                          # raises UsageError("va2pa: argument required: VA; see `help va2pa`")
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from ..core.errors import TinyOSError


# What completes an argument's values when it is not a list of choices (see completions()).
FILENAME, EXPRESSION = "filename", "expression"

# Command lines each parser remembers: a command typed again at every stop parses once.
_MEMO_SIZE = 64
# How many conversions so far took more than their text (see context_dependent()).
_CONTEXT = [0]


def context_dependent() -> None:
    """Called by an argument type whose value depends on more than its text (a gdb
    expression, the working directory): the command line it converts is then parsed
    again next time instead of being remembered."""
    _CONTEXT[0] += 1


class UsageError(TinyOSError):
    """The command line does not match the command's parser."""


class HelpShown(Exception):
    """``--help`` was given and printed: the command has nothing else to do."""


class _Once(argparse.Action):
    """Store an option's value, refusing a second occurrence (``--pid 1 --pid 2`` would
    otherwise silently take the last)."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        _first_time(self, namespace)
        setattr(namespace, self.dest, values)


class _OnceTrue(argparse.Action):
    """``store_true``, given once."""

    def __init__(self, option_strings, dest, default=False, required=False, help=None) -> None:  # noqa: A002
        super().__init__(option_strings, dest, nargs=0, const=True, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        _first_time(self, namespace)
        setattr(namespace, self.dest, True)


def _first_time(action: argparse.Action, namespace: argparse.Namespace) -> None:
    seen = namespace.__dict__.setdefault("_given", set())
    if action.option_strings and action.dest in seen:
        raise argparse.ArgumentError(action, "given twice")
    seen.add(action.dest)


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are exceptions and whose help goes to gdb's output.

    Every command parser has ``--json``: the same model, machine-readable. Its errors are
    one line in the plugin's voice, ``cmd: what is wrong; what to do`` (argparse's own
    phrasing is translated, :func:`usage_problem`); every option may be given once."""

    def __init__(self, *args, json_flag: bool = True, **kwargs) -> None:
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        add_help = kwargs.pop("add_help", True)
        super().__init__(*args, exit_on_error=False, add_help=False, **kwargs)
        # Registered for the parser and its groups alike (they share the registry).
        self.register("action", None, _Once)
        self.register("action", "store", _Once)
        self.register("action", "store_true", _OnceTrue)
        if add_help:  # -h works but is not listed: gdb's `help CMD` is where help lives
            self.add_argument("-h", "--help", action="help", help=argparse.SUPPRESS)
        if json_flag:
            self.add_argument("--json", action="store_true", help="print the result as JSON")
        self._memo: dict[tuple[str, ...], argparse.Namespace] = {}

    def parse(self, argv: Sequence[str]) -> argparse.Namespace:
        """The namespace of ``argv``; a command line seen before whose values came from
        its text alone is not parsed again (argparse takes ~0.1 ms for a few options)."""
        key = tuple(argv)
        known = self._memo.get(key)
        if known is not None:
            return _copy(known)
        conversions = _CONTEXT[0]
        try:
            namespace = self.parse_args(list(argv))
        except argparse.ArgumentError as exc:
            # exit_on_error=False surfaces some errors as ArgumentError instead of error().
            self.error(str(exc))
        namespace.__dict__.pop("_given", None)
        if _CONTEXT[0] == conversions and len(self._memo) < _MEMO_SIZE:
            self._memo[key] = _copy(namespace)
        return namespace

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {usage_problem(message)}; see `help {self.prog}`")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if status:
            raise UsageError(message.strip() if message else f"{self.prog}: invalid arguments")
        raise HelpShown()


def _copy(namespace: argparse.Namespace) -> argparse.Namespace:
    """A namespace of its own for each run (its lists too: a command may extend one)."""
    return argparse.Namespace(**{k: list(v) if isinstance(v, list) else v for k, v in vars(namespace).items()})


# argparse's sentences and the plugin's (gdb's own wording where gdb has one).
_REWRITES = (
    (re.compile(r"^the following arguments are required: (.*)$"), lambda m: f"argument required: {m[1].upper()}"),
    (re.compile(r"^unrecognized arguments: (-\S*).*$"), lambda m: f"unrecognized option at: {m[1]}"),
    (re.compile(r"^unrecognized arguments: (.*)$"), lambda m: f"junk at end of arguments: {m[1]}"),
    (re.compile(r"^argument (\S+): invalid choice: '([^']*)' \(choose from (.*)\)$"),
     lambda m: f"{_shown(m[1])}: invalid choice \"{m[2]}\"; choose from {m[3].replace(chr(39), '')}"),
    (re.compile(r"^argument (\S+): invalid (\w+) value: '([^']*)'$"),
     lambda m: f"{_shown(m[1])}: invalid {'number' if m[2] in ('int', 'float') else m[2]} \"{m[3]}\""),
    (re.compile(r"^argument (\S+): not allowed with argument (\S+)$"),
     lambda m: f"{_shown(m[1])} cannot be combined with {m[2]}"),
    (re.compile(r"^argument (\S+): expected one argument$"), lambda m: f"{_shown(m[1])}: argument required"),
    (re.compile(r"^argument (\S+): expected (\d+) arguments$"), lambda m: f"{_shown(m[1])}: takes {m[2]} arguments"),
    (re.compile(r"^argument (\S+): expected at least one argument$"),
     lambda m: f"{_shown(m[1])}: argument required"),
    (re.compile(r"^argument (\S+): (.*)$"), lambda m: f"{_shown(m[1])}: {m[2]}"),
)


def _shown(name: str) -> str:
    """An argument as the user wrote it: options as is, positionals (``va``) in capitals."""
    first = name.split("/")[0]
    return first if first.startswith("-") else first.upper()


def usage_problem(message: str) -> str:
    """argparse's description of a bad command line, in the plugin's words."""
    message = message.strip()
    for pattern, rewrite in _REWRITES:
        match = pattern.match(message)
        if match:
            return rewrite(match).rstrip(".")
    return message.rstrip(".")  # the "; see `help ...`" that follows ends the sentence


def options_help(parser: argparse.ArgumentParser) -> str:
    """The option list alone: gdb shows the docstring, with its ``Usage:`` line, above it."""
    # argparse has no public call for this part alone; format_help builds it the same way.
    formatter = parser._get_formatter()
    for group in parser._action_groups:
        shown = [a for a in group._group_actions if a.help is not argparse.SUPPRESS]
        if not shown:
            continue
        formatter.start_section("arguments" if group.title == "positional arguments" else group.title)
        formatter.add_arguments(shown)
        formatter.end_section()
    return formatter.format_help().strip()


def address(text: str) -> int:
    """argparse type for addresses: hex with ``0x``, decimal, ``_`` separators allowed."""
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an address: {text!r} (write it as 0x... or decimal)") from None
    if not 0 <= value < 1 << 64:
        raise argparse.ArgumentTypeError(f"address {text} does not fit in 64 bits")
    return value


def seconds(maximum: float):
    """argparse type for a watchdog: seconds, more than 0 and at most ``maximum``."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = float("nan")
        if not 0 < value <= maximum:  # also refuses NaN and infinity
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a timeout: give seconds, more than 0 and at most {maximum:g}")
        return value

    parse.__name__ = "seconds"
    return parse


def local_path(text: str) -> Path:
    """argparse type for a file the plugin (or QEMU for it) writes: ``~`` expanded, a
    relative path resolved against gdb's working directory (QEMU's may be anywhere), and
    control characters refused (they cannot be passed on safely)."""
    if not text or any(ord(c) < 0x20 or ord(c) == 0x7F for c in text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a usable file name (empty, or control characters)")
    context_dependent()  # relative to gdb's working directory, which `cd` changes
    return Path(os.path.abspath(Path(text).expanduser()))


local_path.completion = FILENAME


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


# -- completion -------------------------------------------------------------------------------

def completes_with(kind: str):
    """Mark an argparse ``type`` function with what completes its values (FILENAME, EXPRESSION)."""

    def mark(function):
        function.completion = kind
        return function

    return mark


def completions(parser: argparse.ArgumentParser, text: str, word: str) -> list[str] | str:
    """What completes the command line ``text`` (up to the cursor) at ``word`` (the part
    gdb replaces): option names, an option's or positional's choices, or FILENAME /
    EXPRESSION when gdb's own completer of that kind fits.

    Example::

        completions(pt_parser, "--fil", "fil")      # -> ["filter"]   (gdb breaks words at '-')
        completions(pt_parser, "--filter u", "u")   # -> ["user"]
    """
    tokens = text.split()
    current = "" if not text or text[-1].isspace() else tokens.pop()
    options = {o: a for a in parser._actions for o in a.option_strings if a.help is not argparse.SUPPRESS}
    if current.startswith("-"):
        return _replacing(sorted(o for o in options if o.startswith("--")), current, word)
    target = _expecting(parser, options, tokens)
    if target is None:
        return _replacing(sorted(o for o in options if o.startswith("--")), current, word) if not current else []
    if target.choices:
        offered = [str(c) for c in target.choices]
        if not target.option_strings and not current:
            offered += sorted(o for o in options if o.startswith("--"))
        return _replacing(offered, current, word)
    return getattr(target.type, "completion", None) or []


def _expecting(parser: argparse.ArgumentParser, options: dict, tokens: list[str]) -> argparse.Action | None:
    """The argument the next word of ``tokens`` would be a value of."""
    positionals = [a for a in parser._actions if not a.option_strings]
    pending, remaining, position = None, 0, 0
    for token in tokens:
        if token in options:
            pending, remaining = options[token], _arity(options[token])
            if remaining == 0:
                pending = None
            continue
        if pending is not None:
            remaining -= 1
            if remaining == 0:
                pending = None
            continue
        if position < len(positionals) and _arity(positionals[position]) == 1:
            position += 1
    if pending is not None:
        return pending
    return positionals[position] if position < len(positionals) else None


def _arity(action: argparse.Action) -> float:
    if action.nargs is None:
        return 1
    if isinstance(action.nargs, int):
        return action.nargs
    return 1 if action.nargs == "?" else float("inf")


def _replacing(candidates: list[str], current: str, word: str) -> list[str]:
    """Candidates for the whole token ``current``, cut to replace only gdb's ``word``."""
    prefix = current[: len(current) - len(word)] if word and current.endswith(word) else current
    return [c[len(prefix):] for c in candidates if c.startswith(current)]
