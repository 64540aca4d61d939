"""Rust symbol demangling: legacy (``_ZN...17h<hash>E``) and v0 (``_R...``, RFC 2603).

Hand-written because PyPI has no maintained pure-Python Rust demangler (``rust-demangler``
had one release, in 2021, and predates parts of v0; ``pyderust`` is a compiled binding that
gdb's embedded Debian Python would also need). The output follows rustc-demangle's
alternate form: paths without crate disambiguators or legacy hashes, e.g.
``tinyos::memory::cow::COW_MANAGER``.

Example::

    assert demangle("_ZN6tinyos6memory3cow11COW_MANAGER17h0123456789abcdefE") == "tinyos::memory::cow::COW_MANAGER"
    assert demangle("main") is None
"""

from __future__ import annotations

import re

_LEGACY_HASH = re.compile(r"^h[0-9a-f]{16}$")
_LEGACY_ESCAPES = {"SP": "@", "BP": "*", "RF": "&", "LT": "<", "GT": ">", "LP": "(", "RP": ")", "C": ","}
# Depth of nested paths/types accepted before the input counts as hostile.
_MAX_DEPTH = 200

_BASIC_TYPES = {
    "a": "i8", "b": "bool", "c": "char", "d": "f64", "e": "str", "f": "f32", "h": "u8",
    "i": "isize", "j": "usize", "l": "i32", "m": "u32", "n": "i128", "o": "u128", "s": "i16",
    "t": "u16", "u": "()", "v": "...", "x": "i64", "y": "u64", "z": "!", "p": "_",
}


class DemangleError(ValueError):
    """The symbol looks Rust-mangled but does not follow the grammar."""


def demangle(symbol: str) -> str | None:
    """The Rust path of ``symbol``, or None if it is not a Rust-mangled name (or malformed)."""
    try:
        if symbol.startswith("_R"):
            return demangle_v0(symbol)
        if symbol.startswith("_ZN"):
            return demangle_legacy(symbol)
    except DemangleError:
        return None
    return None


def demangle_legacy(symbol: str) -> str:
    """``_ZN<len><ident>...E`` with a trailing ``17h<16 hex>`` hash component dropped."""
    s = symbol.split(".llvm.")[0]
    if not s.startswith("_ZN"):
        raise DemangleError(f"{symbol!r} is not a legacy Rust symbol")
    i, parts = 3, []
    while i < len(s) and s[i] != "E":
        j = i
        while j < len(s) and s[j].isdigit():
            j += 1
        if j == i:
            raise DemangleError(f"{symbol!r}: expected a length at {i}")
        n = int(s[i:j])
        if j + n > len(s):
            raise DemangleError(f"{symbol!r}: component overruns the name")
        parts.append(s[j : j + n])
        i = j + n
    if i >= len(s):
        raise DemangleError(f"{symbol!r}: no closing E")
    if parts and _LEGACY_HASH.match(parts[-1]):
        parts.pop()
    return "::".join(_unescape_legacy(p) for p in parts)


def _unescape_legacy(part: str) -> str:
    if part.startswith("_$"):
        part = part[1:]
    out, i = [], 0
    while i < len(part):
        if part[i] == "$":
            end = part.find("$", i + 1)
            if end < 0:
                raise DemangleError(f"unterminated escape in {part!r}")
            code = part[i + 1 : end]
            if code in _LEGACY_ESCAPES:
                out.append(_LEGACY_ESCAPES[code])
            elif code.startswith("u") and _is_hex(code[1:]):
                out.append(chr(int(code[1:], 16)))
            else:
                raise DemangleError(f"unknown escape ${code}$ in {part!r}")
            i = end + 1
        elif part.startswith("..", i):
            out.append("::")
            i += 2
        else:
            out.append(part[i])
            i += 1
    return "".join(out)


def _is_hex(s: str) -> bool:
    return bool(s) and all(c in "0123456789abcdefABCDEF" for c in s)


def demangle_v0(symbol: str) -> str:
    """Demangle a v0 symbol (``_R`` + path [+ instantiating crate] [+ vendor suffix])."""
    s = re.split(r"[.$]", symbol, maxsplit=1)[0]
    if not s.startswith("_R"):
        raise DemangleError(f"{symbol!r} is not a v0 Rust symbol")
    parser = _V0(s[2:])
    if parser.peek().isdigit():  # encoding version; only 0 (omitted) exists
        raise DemangleError(f"{symbol!r}: unsupported v0 encoding version")
    return parser.path(in_value=True)


class _V0:
    """Recursive-descent parser over the text after ``_R``; positions index that text."""

    def __init__(self, text: str, pos: int = 0, depth: int = 0) -> None:
        self.s = text
        self.pos = pos
        self.depth = depth

    # -- lexical -----------------------------------------------------------------
    def peek(self) -> str:
        return self.s[self.pos] if self.pos < len(self.s) else ""

    def next(self) -> str:
        c = self.peek()
        if not c:
            raise DemangleError("unexpected end of symbol")
        self.pos += 1
        return c

    def eat(self, c: str) -> bool:
        if self.peek() == c:
            self.pos += 1
            return True
        return False

    def base62(self) -> int:
        if self.eat("_"):
            return 0
        value = 0
        while not self.eat("_"):
            c = self.next()
            if c.isdigit():
                d = ord(c) - ord("0")
            elif "a" <= c <= "z":
                d = ord(c) - ord("a") + 10
            elif "A" <= c <= "Z":
                d = ord(c) - ord("A") + 36
            else:
                raise DemangleError(f"bad base-62 digit {c!r}")
            value = value * 62 + d
        return value + 1

    def opt_base62(self, tag: str) -> int:
        return self.base62() + 1 if self.eat(tag) else 0

    def decimal(self) -> int:
        start = self.pos
        if self.eat("0"):  # "0" never starts a longer number
            return 0
        while self.peek().isdigit():
            self.pos += 1
        if start == self.pos:
            raise DemangleError(f"expected a number at {start}")
        return int(self.s[start : self.pos])

    def ident(self) -> str:
        punycode = self.eat("u")
        n = self.decimal()
        self.eat("_")
        if self.pos + n > len(self.s):
            raise DemangleError("identifier overruns the symbol")
        raw = self.s[self.pos : self.pos + n]
        self.pos += n
        if not punycode:
            return raw
        head, sep, tail = raw.rpartition("_")
        try:
            decoded = (head + "-" + tail if sep else raw).encode("ascii").decode("punycode")
        except (UnicodeError, ValueError) as exc:
            raise DemangleError(f"bad punycode identifier {raw!r}") from exc
        return decoded

    def backref(self, parse: str) -> str:
        start = self.pos - 1
        target = self.base62()
        if target >= start:
            raise DemangleError("backref does not point backwards")
        sub = _V0(self.s, target, self.depth + 1)
        return getattr(sub, parse)()

    def _enter(self) -> None:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise DemangleError("symbol nests too deeply")

    # -- grammar -----------------------------------------------------------------
    def path(self, in_value: bool = False) -> str:
        self._enter()
        try:
            return self._path(in_value)
        finally:
            self.depth -= 1

    def path_value(self) -> str:
        return self.path(in_value=True)

    def _path(self, in_value: bool) -> str:
        tag = self.next()
        if tag == "C":
            self.opt_base62("s")
            return self.ident()
        if tag == "N":
            ns = self.next()
            parent = self.path(in_value)
            dis = self.opt_base62("s")
            name = self.ident()
            if ns.isupper():
                kind = {"C": "closure", "S": "shim"}.get(ns, ns)
                return f"{parent}::{{{kind}{':' + name if name else ''}#{dis}}}"
            return f"{parent}::{name}" if name else parent
        if tag == "M":
            self.opt_base62("s")
            self.path()
            return f"<{self.type()}>"
        if tag == "X":
            self.opt_base62("s")
            self.path()
            return f"<{self.type()} as {self.path()}>"
        if tag == "Y":
            return f"<{self.type()} as {self.path()}>"
        if tag == "I":
            base = self.path(in_value)
            args = []
            while not self.eat("E"):
                args.append(self.generic_arg())
            sep = "::" if in_value else ""
            return f"{base}{sep}<{', '.join(a for a in args if a)}>"
        if tag == "B":
            return self.backref("path_value" if in_value else "path")
        raise DemangleError(f"unknown path tag {tag!r}")

    def generic_arg(self) -> str:
        if self.eat("L"):
            self.base62()
            return ""
        if self.eat("K"):
            return self.const()
        return self.type()

    def type(self) -> str:
        self._enter()
        try:
            return self._type()
        finally:
            self.depth -= 1

    def _type(self) -> str:
        tag = self.peek()
        if tag in _BASIC_TYPES:
            self.pos += 1
            return _BASIC_TYPES[tag]
        if tag in "CMXYNI":
            return self.path()
        self.pos += 1
        if tag == "A":
            inner = self.type()
            return f"[{inner}; {self.const()}]"
        if tag == "S":
            return f"[{self.type()}]"
        if tag == "T":
            items = []
            while not self.eat("E"):
                items.append(self.type())
            return f"({items[0]},)" if len(items) == 1 else f"({', '.join(items)})"
        if tag in "RQ":
            if self.eat("L"):
                self.base62()
            return ("&" if tag == "R" else "&mut ") + self.type()
        if tag in "PO":
            return ("*const " if tag == "P" else "*mut ") + self.type()
        if tag == "F":
            return self.fn_sig()
        if tag == "D":
            return self.dyn_bounds()
        if tag == "B":
            return self.backref("type")
        raise DemangleError(f"unknown type tag {tag!r}")

    def fn_sig(self) -> str:
        self.opt_base62("G")
        unsafe = "unsafe " if self.eat("U") else ""
        abi = ""
        if self.eat("K"):
            abi = 'extern "C" ' if self.eat("C") else f'extern "{self.ident().replace("_", "-")}" '
        params = []
        while not self.eat("E"):
            params.append(self.type())
        ret = self.type()
        return f"{unsafe}{abi}fn({', '.join(params)})" + ("" if ret == "()" else f" -> {ret}")

    def dyn_bounds(self) -> str:
        self.opt_base62("G")
        traits = []
        while not self.eat("E"):
            trait = self.path()
            bindings = []
            while self.eat("p"):
                name = self.ident()
                bindings.append(f"{name} = {self.type()}")
            if bindings:
                trait = f"{trait.removesuffix('>')}, {', '.join(bindings)}>" if trait.endswith(">") else f"{trait}<{', '.join(bindings)}>"
            traits.append(trait)
        if self.eat("L"):
            self.base62()
        return "dyn " + " + ".join(traits)

    def const(self) -> str:
        if self.eat("p"):
            return "_"
        if self.eat("B"):
            return self.backref("const")
        ty = self.next()
        if ty not in _BASIC_TYPES:
            raise DemangleError(f"unsupported const type {ty!r}")
        negative = self.eat("n")
        start = self.pos
        while self.peek() and self.peek() != "_":
            if self.next() not in "0123456789abcdef":
                raise DemangleError("bad hex digit in const")
        digits = self.s[start : self.pos]
        self.next()
        value = int(digits, 16) if digits else 0
        if ty == "b":
            return "true" if value == 1 else "false"
        if ty == "c":
            return repr(chr(value)) if value <= 0x10FFFF else str(value)
        return str(-value if negative else value)
