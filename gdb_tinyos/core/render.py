"""One model, many faces: plain data for JSON and MI, text tables for people.

Decoders return dataclasses; commands never format by hand beyond calling these helpers,
so the text a user sees, the ``--json`` output and the MI record come from the same object.

Example::

    @dataclass
    class Row:
        va: Address
        pa: Address
    to_plain([Row(Address(0x1000), Address(0x4000_0000))])
    # -> [{"va": "0x1000", "pa": "0x40000000"}]
    table([Row(...)], headers=["va", "pa"])   # tabulate text
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import PurePath
from typing import Any

from tabulate import tabulate

from .address import Address, hexs

__all__ = ["Address", "cell", "hexs", "key_values", "printable", "table", "table_lines", "terminal_safe", "to_json",
           "to_mi", "to_plain"]

# What JSON leaves raw that a terminal acts on or that reorders what the user reads: DEL,
# the C1 controls (U+009B is a CSI on many terminals), bidirectional marks and overrides.
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
# The colour sequences the plugin's own styling writes (core/style.py): the only escape
# sequences terminal_safe() lets through.
_SGR = re.compile("\x1b\\[[0-9;]*m")
_LINE_PIECES = re.compile("[^\n\t]+")
_ASCII_KEPT = bytes(range(0x20, 0x7F)) + b"\n\t"  # printable ASCII, line ends and tabs


def to_plain(obj: Any) -> Any:
    """Dataclasses/enums/paths/bytes -> dicts, lists, str, int, bool, None (JSON-ready)."""
    if isinstance(obj, Address):
        return str(obj)
    if isinstance(obj, enum.Enum):
        return obj.name
    if isinstance(obj, bool | int | float | str) or obj is None:
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.repr}
    if isinstance(obj, Mapping):
        return {str(k): to_plain(v) for k, v in obj.items()}
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj).hex()
    if isinstance(obj, PurePath):
        return str(obj)
    if isinstance(obj, set | frozenset):
        return [to_plain(v) for v in sorted(obj)]  # a stable order for diffs and tests
    if isinstance(obj, Iterable):
        return [to_plain(v) for v in obj]
    raise TypeError(f"cannot render {type(obj).__name__} as plain data")


def to_json(obj: Any) -> str:
    """The ``--json`` face: stable key order as declared, indented for humans and diffs,
    UTF-8 as is; the characters a terminal would act on are ``\\uNNNN`` escapes (JSON
    escapes C0 controls itself, not DEL, C1 controls or bidirectional overrides)."""
    text = json.dumps(to_plain(obj), indent=2, ensure_ascii=False)
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def to_mi(obj: Any) -> Any:
    """The MI face: like :func:`to_plain` but every leaf a string, as MI results are.

    ``None`` becomes ``""`` and booleans ``"true"``/``"false"``; MI keys must be
    identifiers, so ``-`` and ``_`` are kept and other characters become ``_``."""
    plain = to_plain(obj)
    return _mi_leafs(plain)


def _mi_leafs(value: Any) -> Any:
    if isinstance(value, dict):
        return {_mi_key(k): _mi_leafs(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mi_leafs(v) for v in value]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _mi_key(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in key) or "_"


def table(rows: Sequence[Any], headers: Sequence[str], titles: Sequence[str] | None = None) -> str:
    """A text table of ``rows`` (dataclasses or mappings) showing the ``headers`` fields.

    ``titles`` renames the columns for display; cells render through :func:`cell`."""
    body = [[cell(_field(r, h)) for h in headers] for r in rows]
    if any("\n" in c for row in body for c in row):  # multi-line cells: tabulate's layout
        return tabulate(body, headers=list(titles or headers), tablefmt="simple", disable_numparse=True)
    return "\n".join(table_lines(body, list(titles or headers)))


def table_lines(body: Sequence[Sequence[str]], headers: Sequence[str]) -> Iterator[str]:
    """The lines of tabulate's "simple" table of single-line string cells, a cell per
    header in every row (the same text, produced lazily: a caller can write 40 000 rows in
    chunks as they come)."""
    body = [tuple(map(str.strip, row)) for row in body]
    columns = list(zip(*body)) if body else [()] * len(headers)
    # tabulate pads header cells by 2
    widths = [max(len(h) + 2, max(map(len, column), default=0)) for h, column in zip(headers, columns)]
    yield "  ".join(map(str.ljust, headers, widths)).rstrip()
    yield "  ".join("-" * w for w in widths)
    line = "  ".join(f"%-{w}s" for w in widths)  # a row in one format: each cell left-justified
    for row in body:
        yield (line % row).rstrip()


def cell(value: Any) -> str:
    """One table cell: addresses in hex, enums by name, lists comma-separated, None as ``-``."""
    if type(value) is str:  # most cells, already text: only escaped
        return printable(value)
    if value is None:
        return "-"
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return ", ".join(cell(v) for v in value) or "-"
    return printable(str(value))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``1 frame``, ``2 frames``: a count with its noun agreeing."""
    if n == 1:
        return f"1 {noun}"
    return f"{n} {plural or (noun + 'es' if noun.endswith('s') else noun + 's')}"


def key_values(pairs: Iterable[tuple[str, Any]]) -> str:
    """Aligned ``name: value`` lines, for a model's scalar summary above its tables."""
    items = [(k, cell(v)) for k, v in pairs]
    width = max((len(k) for k, _ in items), default=0)
    return "\n".join(f"{k + ':':<{width + 1}} {v}" for k, v in items)


def _field(row: Any, name: str) -> Any:
    if isinstance(row, Mapping):
        return row.get(name)
    return getattr(row, name)


def printable(text: str) -> str:
    """Text read from the target, safe for a terminal: control characters (escape sequences
    included) and other non-printables as ``\\xNN`` / ``\\uNNNN``. The one escaping
    function of the text faces (tables and ``key_values`` apply it to every string cell).

    Example: ``printable("a\\x1b]0;x\\x07")`` -> ``'a\\\\x1b]0;x\\\\x07'``"""
    if text.isprintable():  # the usual case, decided in C: nothing to escape
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def written(pieces: Iterable[str]) -> Iterator[str]:
    """The non-empty pieces of a text face as a command writes them, each ended by a newline
    (one already there is kept: a piece must not end in an empty line it means to show)."""
    for text in pieces:
        if text:
            yield text if text.endswith("\n") else text + "\n"


def terminal_safe(text: str) -> str:
    """A whole text face made safe for the terminal, the last step before it is written:
    line ends and tabs kept, the plugin's own colour codes kept, everything else through
    :func:`printable` (a net for strings a face forgot)."""
    if text.isascii():  # the usual case: one pass in C over bytes (text.isascii() is a flag)
        if not text.encode("ascii").translate(None, _ASCII_KEPT):
            return text
    elif text.replace("\n", "").replace("\t", "").isprintable():  # no control character at all: as is
        return text
    parts, last = [], 0
    for match in _SGR.finditer(text):
        parts.append(_LINE_PIECES.sub(lambda m: printable(m.group()), text[last:match.start()]))
        parts.append(match.group())
        last = match.end()
    parts.append(_LINE_PIECES.sub(lambda m: printable(m.group()), text[last:]))
    return "".join(parts)
