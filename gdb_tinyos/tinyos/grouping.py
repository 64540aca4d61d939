"""Group identical findings of a check over consecutive frames into one, with a count.

A pathological state (one 1 GiB EL0-writable block, twenty thousand pages broken the same
way) would otherwise produce a violation per frame: hundreds of thousands of lines that
say one thing. :func:`group_violations` merges violations of the same kind whose frames
follow each other and whose message and evidence are the same once addresses are set
aside; the merged violation keeps the first frame's words and evidence, and says how many
frames (``count``) up to which one (``last``) share them.

Example::

    report = check_cow(cow, table, index, frames)
    grouped = group_violations(report.violations)   # [frame-refs] frames 0x...-0x... (32749 frames): ...
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import replace

from ..core.address import PAGE_SIZE, Address
from .check import Violation

_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


def group_violations(violations: Iterable[Violation]) -> tuple[Violation, ...]:
    """``violations`` with each run of identical findings on consecutive frames merged,
    in the order each group first appeared. Findings without a frame pass unchanged."""
    grouped: list[Violation] = []
    growing: dict[tuple, int] = {}  # a finding's shape -> the group it may extend
    for v in violations:
        if v.pa is None:
            grouped.append(v)
            continue
        shape = (v.kind, _ADDRESS.sub("#", v.message), tuple(_ADDRESS.sub("#", e) for e in v.evidence))
        at = growing.get(shape)
        if at is not None:
            group = grouped[at]
            if v.pa == _last(group) + PAGE_SIZE:
                grouped[at] = replace(group, count=group.count + v.count, last=Address(_last(v)))
                continue
        growing[shape] = len(grouped)
        grouped.append(v)
    return tuple(grouped)


def _last(v: Violation) -> int:
    return v.last if v.last is not None else v.pa
