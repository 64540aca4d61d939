"""Python's cycle collector paused while a command builds its model.

A command at a fresh stop allocates tens of thousands of containers (cow-check's sets of
(pid, VA page, frame) triples, cow-status's row tuples) that reference counting frees; the
cycle collector would otherwise run dozens of times meanwhile, each pass scanning the young
objects and now and then the whole heap -- ~15 % of cow-check's time, for no garbage.
The pause nests: only the outermost one resumes collection, which then runs as usual.

Example::

    with collector_paused():
        report = run_check(s)
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
