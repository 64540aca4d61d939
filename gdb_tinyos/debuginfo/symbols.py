"""Symbol lookup by exact name, Rust path, or unique path suffix.

Entries come from two places: the ELF symbol table (mangled names, demangled to paths)
and DWARF statics (``DW_TAG_variable`` under namespaces). A ``#[no_mangle] static COW`` in
crate ``k`` has the ELF name ``COW`` but the DWARF path ``k::COW``; both lead to the same
address, so entries at one address count as one match.

Example::

    table.lookup("COW_MANAGER")          # unique last segment
    table.lookup("cow::COW_MANAGER")     # unique suffix
    table.lookup("tinyos::memory::cow::COW_MANAGER")
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..core.errors import SymbolError

# What changes nesting in a path; "->" (fn types) is matched so its '>' is not a bracket.
_PATH_TOKENS = re.compile(r"->|::|[<>()\[\]]")


@dataclass(frozen=True)
class Symbol:
    """One addressable thing: ``name`` as linked, ``path`` as Rust spells it."""

    name: str
    path: str
    address: int
    size: int
    kind: str  # "object", "function", "notype" (linker symbols), "static" (DWARF)
    type_offset: int | None = None  # DIE of the static's type, for DWARF entries


def split_path(path: str) -> list[str]:
    """Split at ``::`` outside ``<...>``, ``(...)`` and ``[...]``, so generic arguments stay whole:
    ``a::B<c::D>::e`` -> ``["a", "B<c::D>", "e"]``."""
    if "<" not in path and "(" not in path and "[" not in path:
        return path.split("::")
    parts, depth, start = [], 0, 0
    for token in _PATH_TOKENS.finditer(path):
        text = token.group()
        if text in "<([":
            depth += 1
        elif text in ">)]":
            depth = max(depth - 1, 0)
        elif text == "::" and depth == 0:
            parts.append(path[start : token.start()])
            start = token.end()
    parts.append(path[start:])
    return parts


def is_suffix(query: list[str], path: list[str]) -> bool:
    """Whether ``path`` ends in ``query``; generic arguments may be given by suffix too
    (``Option<CowPage>`` matches ``core::option::Option<tinyos::memory::cow::CowPage>``),
    since DWARF spells them in full but a kernel's own reports do not."""
    if len(query) > len(path):
        return False
    return all(_segment_matches(q, p) for q, p in zip(query, path[len(path) - len(query) :]))


def _segment_matches(query: str, segment: str) -> bool:
    if query == segment:
        return True
    q_base, q_args = _generic(query)
    s_base, s_args = _generic(segment)
    return (q_args is not None and s_args is not None and q_base == s_base and len(q_args) == len(s_args)
            and all(_argument_matches(q, a) for q, a in zip(q_args, s_args)))


def _argument_matches(query: str, argument: str) -> bool:
    """A path-suffix match of one generic argument; ``&``/``*const`` prefixes must agree
    (``Option<CowPage>`` is not ``Option<&CowPage>``)."""
    q_sigil, q_rest = _sigil(query)
    a_sigil, a_rest = _sigil(argument)
    return q_sigil == a_sigil and is_suffix(split_path(q_rest), split_path(a_rest))


_SIGIL = re.compile(r"^(?:&(?:mut )?|\*(?:const|mut) )*")


def _sigil(argument: str) -> tuple[str, str]:
    prefix = _SIGIL.match(argument).group()
    return prefix, argument[len(prefix) :]


def _generic(segment: str) -> tuple[str, list[str] | None]:
    """``Name<A, B<C>>`` -> ("Name", ["A", "B<C>"]); no generic arguments -> (segment, None)."""
    if not segment.endswith(">") or "<" not in segment:
        return segment, None
    base, inner = segment[: segment.index("<")], segment[segment.index("<") + 1 : -1]
    args, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        if c in "<([":
            depth += 1
        elif c in ">)]":
            depth -= 1
        elif c == "," and depth == 0:
            args.append(inner[start:i].strip())
            start = i + 1
    args.append(inner[start:].strip())
    return base, args


class SymbolTable:
    """Symbols indexed for exact and suffix lookup; ``source`` names the file in errors."""

    def __init__(self, symbols: Iterable[Symbol], source: str) -> None:
        self.symbols = list(symbols)
        self.source = source
        self._by_name: dict[str, list[Symbol]] = {}
        self._by_last: dict[str, list[Symbol]] = {}
        for s in self.symbols:
            self._by_name.setdefault(s.name, []).append(s)
            if s.path != s.name:
                self._by_name.setdefault(s.path, []).append(s)
            self._by_last.setdefault(split_path(s.path)[-1], []).append(s)
            last_name = split_path(s.name)[-1]
            if last_name != split_path(s.path)[-1]:
                self._by_last.setdefault(last_name, []).append(s)

    def lookup(self, query: str) -> Symbol:
        """The one symbol named ``query`` exactly, else the one whose path ends with it.

        Raises SymbolError naming the candidates when several distinct addresses match,
        or what was searched when nothing does."""
        query = query.strip().removeprefix("::")
        exact = _distinct(self._by_name.get(query, []))
        if len(exact) == 1:
            return exact[0]
        if len(exact) > 1:
            raise self._ambiguous(query, exact)
        wanted = split_path(query)
        found = _distinct(
            s for s in self._by_last.get(wanted[-1], [])
            if is_suffix(wanted, split_path(s.path)) or is_suffix(wanted, split_path(s.name))
        )
        if len(found) == 1:
            return found[0]
        if found:
            raise self._ambiguous(query, found)
        raise SymbolError(
            f"no symbol named or ending in {query!r} in {self.source} "
            f"(searched {len(self.symbols)} ELF symbols and DWARF statics by name and Rust path)"
        )

    def _ambiguous(self, query: str, found: list[Symbol]) -> SymbolError:
        names = ", ".join(sorted(f"{s.path} ({s.address:#x})" for s in found)[:10])
        more = f" and {len(found) - 10} more" if len(found) > 10 else ""
        return SymbolError(f"{query!r} is ambiguous in {self.source}: it matches {names}{more}; give more of the path")


def _distinct(symbols: Iterable[Symbol]) -> list[Symbol]:
    """One symbol per address, preferring a DWARF static (it carries the type)."""
    by_address: dict[int, Symbol] = {}
    for s in symbols:
        kept = by_address.get(s.address)
        if kept is None or (kept.type_offset is None and s.type_offset is not None):
            by_address[s.address] = s
    return list(by_address.values())
