"""The plugin's styling vocabulary: what in a text face deserves a colour, without colours.

Five kinds -- an address, a permission set (``EL0:RW-``), the COW mark, a violation, an
OK -- found in a finished text face by :func:`highlight` and handed to a ``paint(kind,
text)`` function. This module knows no colours and no gdb: the gdb adapter maps the kinds
to gdb's own style settings (``set style address foreground``...) and paints only when
gdb's styling is on and the output is a terminal; JSON and MI are never styled.

Example::

    highlight("va 0x800000 -> pa 0x40006000 EL0:R--", lambda kind, t: f"<{kind}>{t}</{kind}>")
    # 'va <address>0x800000</address> -> pa <address>0x40006000</address> <permission>EL0:R--</permission>'
"""

from __future__ import annotations

import re
from collections.abc import Callable

ADDRESS, PERMISSION, COW, VIOLATION, OK = "address", "permission", "cow", "violation", "ok"
KINDS = (ADDRESS, PERMISSION, COW, VIOLATION, OK)

# Earlier kinds win where two could match the same text.
_PATTERNS = (
    (VIOLATION, r"\b(?:MISMATCH|FAIL(?:ED)?|[1-9]\d* violations?|violation)\b"),
    (OK, r"\b(?:OK|ok|PASS)\b"),
    (PERMISSION, r"\bEL[0-3]:[R-][W-][X-]"),
    (COW, r"\bCOW\b|(?<!::)\bcow(?:=yes)?\b(?![-:])"),  # not cow-check, not a path's ::cow::
    (ADDRESS, r"\b0x[0-9a-fA-F]+\b"),
)
_FINDER = re.compile("|".join(f"(?P<{kind}>{pattern})" for kind, pattern in _PATTERNS))


def highlight(text: str, paint: Callable[[str, str], str]) -> str:
    """``text`` with every styled span replaced by ``paint(kind, span)``."""
    return _FINDER.sub(lambda m: paint(m.lastgroup, m.group()), text)
