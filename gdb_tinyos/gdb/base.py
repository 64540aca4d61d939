"""The command framework: a gdb command is a parser, a ``run`` returning a model, a text face.

Writing a command::

    class Va2Pa(TinyOSCommand):
        \"\"\"Translate a virtual address through the page tables, level by level.

        Usage: va2pa VA [--pid N] [--json]
        Example: va2pa 0xffff000040080000\"\"\"

        name = "va2pa"

        def add_arguments(self, parser):
            parser.add_argument("va", type=address)

        def run(self, s: Session, args) -> Walk:          # a dataclass model
            return s.state().walk(args.va)

        def format_text(self, model: Walk) -> str:
            return model.describe()

``--json`` is added to every parser and prints :func:`render.to_json` of the same model.
Typed errors (``TinyOSError``) and gdb errors become one ``gdb.GdbError`` line at
:meth:`TinyOSCommand.invoke`; anything else is a bug and becomes one line telling how to get
the traceback. A command whose name starts with ``cow-`` is also reachable as
``cow <rest>`` under the ``cow`` prefix (``help cow`` lists the family).

MI: :class:`TinyOSMICommand` wraps a TinyOSCommand as ``-<name>`` returning
:func:`render.to_mi` of the model.
"""

from __future__ import annotations

import argparse
import inspect
import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any, ClassVar

import gdb

from ..core import render, style
from ..core.collector import collector_paused
from ..core.errors import TinyOSError
from .args import EXPRESSION, FILENAME, CommandParser, context_dependent, HelpShown, UsageError, address, completes_with, completions, one_line, options_help, unexpected_failure_message
from .session import Session, session
from .target import require_stopped


@contextmanager
def command_boundary(command: str) -> Iterator[None]:
    """Where failures become ``gdb.GdbError``: one line, no traceback, gdb still usable
    (and where the cycle collector waits until the command is done: core/collector.py)."""
    try:
        with collector_paused():
            yield
    except HelpShown:
        return
    except (TinyOSError, gdb.GdbError, gdb.error) as exc:
        raise gdb.GdbError(voiced(command, str(exc))) from None
    except KeyboardInterrupt:
        raise
    except Exception as exc:  # noqa: BLE001 - the one place a crash becomes a message
        if _print_stack_full():
            raise
        raise gdb.GdbError(unexpected_failure_message(command, exc)) from None


# gdb's style settings for each kind of the plugin's vocabulary (core/style.py); the
# violation and OK colours are fixed: red and green whatever the theme.
_STYLE_SETTINGS = {style.ADDRESS: "style address foreground", style.PERMISSION: "style variable foreground",
                   style.COW: "style function foreground"}
_FIXED = {style.VIOLATION: "1;31", style.OK: "32"}
_SGR_COLOURS = {"black": 30, "red": 31, "green": 32, "yellow": 33, "blue": 34, "magenta": 35, "cyan": 36,
                "white": 37}


def styled(text: str, plain: bool = False, terminal: bool | None = None) -> str:
    """A text face coloured through gdb's styles: only when ``set style enabled`` is on
    and gdb writes to a terminal (``terminal`` overrides the check), never for JSON."""
    if plain or not gdb.parameter("style enabled"):
        return text
    if not (os.isatty(1) if terminal is None else terminal):
        return text
    codes = dict(_FIXED)
    for kind, setting in _STYLE_SETTINGS.items():
        try:
            colour = _SGR_COLOURS.get(str(gdb.parameter(setting)))
        except (gdb.error, RuntimeError):
            colour = None
        if colour is not None:
            codes[kind] = str(colour)
    return style.highlight(text, lambda kind, span: f"\x1b[{codes[kind]}m{span}\x1b[0m" if kind in codes else span)


def voiced(command: str, message: str) -> str:
    """The one error voice: ``cmd: what is wrong; what to do``, on one line, the command
    named once whichever layer wrote the sentence."""
    line = render.printable(one_line(message) or "failed")
    return line if line.startswith(f"{command}: ") else f"{command}: {line}"


def _print_stack_full() -> bool:
    try:
        return gdb.parameter("python print-stack") == "full"
    except gdb.error:
        return False


_GDB_COMPLETERS = {FILENAME: gdb.COMPLETE_FILENAME, EXPRESSION: gdb.COMPLETE_EXPRESSION}


@completes_with(EXPRESSION)
def gdb_address(text: str) -> int:
    """argparse type: a number, else any gdb expression (``$sp``, ``&COW_MANAGER``, ``$pc+4``)."""
    try:
        return address(text)
    except argparse.ArgumentTypeError:
        pass
    return _evaluate_integer(text, "an address") & ((1 << 64) - 1)


@completes_with(EXPRESSION)
def gdb_number(text: str) -> int:
    """argparse type for pids, ASIDs, counts: a non-negative integer or a gdb expression
    (``--pid $x2`` at a fork event, where x2 is the child's pid)."""
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        value = _evaluate_integer(text, "a number")
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative; give a number >= 0")
    return value


def _evaluate_integer(text: str, what: str) -> int:
    context_dependent()  # `--pid $x2`: another value at the next stop
    try:
        value = gdb.parse_and_eval(text)
    except gdb.error as exc:
        raise argparse.ArgumentTypeError(f"not {what}: {one_line(str(exc))}") from None
    if not _is_integral(value):
        raise argparse.ArgumentTypeError(f"not {what}: {text} is of type {value.type}")
    return int(value)


_INTEGRAL = (gdb.TYPE_CODE_INT, gdb.TYPE_CODE_PTR, gdb.TYPE_CODE_BOOL, gdb.TYPE_CODE_CHAR,
             gdb.TYPE_CODE_ENUM, gdb.TYPE_CODE_REF)


def _is_integral(value: gdb.Value) -> bool:
    return value.type.strip_typedefs().code in _INTEGRAL


# Every command's help names the plugin, so `apropos tinyos` finds them all.
HELP_FOOTER = "A gdb-tinyos command (TinyOS kernel debugging): `help cow`, `tinyos-info`."


class TinyOSCommand(gdb.Command):
    """Base of every gdb_tinyos CLI command (subclasses set ``name`` and a docstring)."""

    name: ClassVar[str]
    command_class: ClassVar[int] = gdb.COMMAND_USER
    # run() only decodes through the session's target (no gdb command, expression or
    # inferior call): its reads may share one switch of QEMU's physical mode (Target.batch).
    decodes_only: ClassVar[bool] = False

    def __init__(self, gdb_name: str | None = None) -> None:
        self.parser = self.build_parser()
        type(self).__doc__ = self.help_text()
        # No completer class: gdb then calls complete() (a class would replace it).
        super().__init__(gdb_name or self.name, self.command_class)

    # -- what a subclass writes ------------------------------------------------------

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments (``--json`` is already there)."""

    def run(self, s: Session, args: argparse.Namespace) -> Any:
        """Compute the model (a dataclass or plain data); no printing here."""
        raise NotImplementedError

    def format_text(self, model: Any) -> str:
        """The text face of the model; the default is the JSON face."""
        return render.to_json(self.plain(model))

    def format_chunks(self, model: Any) -> Iterable[str]:
        """The text face in pieces, written one by one (override for long listings)."""
        return (self.format_text(model),)

    def plain(self, model: Any) -> Any:
        """The model as plain data, for --json and MI (override to reshape the model first)."""
        return render.to_plain(model)

    # -- machinery -------------------------------------------------------------------

    @classmethod
    def docstring(cls) -> str:
        """The class's own docstring (kept: ``__doc__`` is replaced by the full help)."""
        if "_tinyos_doc" not in cls.__dict__:
            cls._tinyos_doc = inspect.getdoc(cls) or cls.name
        return cls._tinyos_doc

    @classmethod
    def summary(cls) -> str:
        return cls.docstring().splitlines()[0]

    def build_parser(self) -> CommandParser:
        first, _, rest = self.docstring().partition("\n")
        parser = CommandParser(prog=self.name, description=first, epilog=rest.strip() or None, add_help=True)
        self.add_arguments(parser)
        return parser

    def help_text(self) -> str:
        """gdb's help: the docstring (summary, its one ``Usage:`` line, example), then the options."""
        return self.docstring() + "\n\n" + options_help(self.parser) + "\n\n" + HELP_FOOTER

    def complete(self, text: str, word: str) -> Any:
        """Tab completion from the parser (:func:`args.completions`): option names,
        choices, file names, expressions."""
        found = completions(self.parser, text, word)
        return _GDB_COMPLETERS[found] if isinstance(found, str) else found

    def parse(self, argument: str) -> argparse.Namespace:
        return self.parser.parse(gdb.string_to_argv(argument))

    def invoke(self, argument: str, from_tty: bool) -> None:
        with command_boundary(self.name):
            args = self.parse(argument)
            s = session()
            with s.target.batch() if self.decodes_only else nullcontext():
                model = self.run(s, args)
            chunks = (render.to_json(self.plain(model)),) if getattr(args, "json", False) else self.format_chunks(model)
            for text in render.written(chunks):  # each as it comes: gdb's pager can stop a long listing
                # typed at the prompt only: gdb.execute(..., to_string=True) and MI get plain text
                gdb.write(styled(render.terminal_safe(text), plain=getattr(args, "json", False) or not from_tty))


def fresh_session() -> Session:
    """The session, its per-stop state dropped when the thread still counts as running:
    inside a breakpoint condition gdb halted the target and will resume it without any
    stop or continue event, so nothing else would drop the previous evaluation's state."""
    thread = require_stopped()
    s = session()
    if thread is not None and thread.is_running():
        s.invalidate()
    return s


class TinyOSFunction(gdb.Function):
    """Base of convenience functions (``$name(args)``): integer arguments in, a value out.

    Subclasses set ``name`` and write ``compute(session, *ints)``; the number of arguments
    comes from ``compute``'s signature and each must be an integer or a pointer (``1.5``
    is refused, not truncated); typed errors become one gdb error line, as in commands."""

    name: ClassVar[str]

    def __init__(self) -> None:
        type(self).__doc__ = inspect.getdoc(type(self))
        super().__init__(self.name)

    def compute(self, s: Session, *args: int) -> Any:
        raise NotImplementedError

    @classmethod
    def parameters(cls) -> list[str]:
        """``compute``'s argument names after the session (``["va", "pid"]``)."""
        return list(inspect.signature(cls.compute).parameters)[2:]

    def invoke(self, *args: gdb.Value) -> Any:
        with command_boundary("$" + self.name):
            values = self.check_arguments(args)
            return self.compute(fresh_session(), *values)

    def check_arguments(self, args: tuple[gdb.Value, ...]) -> list[int]:
        names = self.parameters()
        call = f"${self.name}({', '.join(n.upper() for n in names)})"
        if len(args) != len(names):
            raise UsageError(f"${self.name}: takes {len(names)} argument{'s' if len(names) != 1 else ''}, "
                             f"{len(args)} given; write {call}")
        for position, (name, value) in enumerate(zip(names, args), 1):
            if not _is_integral(value):
                raise UsageError(f"${self.name}: argument {position} ({name.upper()}) is of type {value.type}, "
                                 f"not an integer or address; write {call}")
        return [int(a) & ((1 << 64) - 1) for a in args]


class CowPrefix(gdb.Command):
    """Copy-on-write commands of TinyOS: decode the COW manager, check it, drive it.

    Each `cow NAME` is also available as `cow-NAME`. Every command takes --json.
    Example:
      (gdb) cow status --pid 2
      (gdb) cow-check"""

    def __init__(self) -> None:
        super().__init__("cow", gdb.COMMAND_USER, gdb.COMPLETE_COMMAND, prefix=True)

    def invoke(self, argument: str, from_tty: bool) -> None:
        gdb.execute("help cow", from_tty=from_tty)


class TinyOSMICommand(gdb.MICommand):
    """``-<name>``: the MI face of a TinyOSCommand (same parser, same model, MI result)."""

    def __init__(self, command: TinyOSCommand) -> None:
        self.command = command
        super().__init__("-" + command.name)

    def invoke(self, argv: list[str]) -> dict[str, Any]:
        with command_boundary("-" + self.command.name):
            args = self.command.parser.parse(argv)
            return {"result": render.to_mi(self.command.plain(self.command.run(session(), args)))}
        return {}  # --help was asked: nothing to return
