"""One factor for every wait of the harness and launcher: a loaded machine (parallel test
workers, other people's builds) is slower, not broken.

``TINYOS_TIMEOUT_SCALE=3 ./scripts/test`` (or ``./scripts/test --tinyos-timeout-scale 3``)
triples every timeout: gdb/MI answers, stops, the serial console, QEMU's start.

Example::

    deadline = time.monotonic() + scaled(10.0)
"""

from __future__ import annotations

import os

from .errors import TinyOSError

TIMEOUT_SCALE_ENV = "TINYOS_TIMEOUT_SCALE"


def timeout_scale() -> float:
    """The factor from ``$TINYOS_TIMEOUT_SCALE`` (default 1); TinyOSError if it is not a
    positive number."""
    text = os.environ.get(TIMEOUT_SCALE_ENV, "").strip()
    if not text:
        return 1.0
    try:
        factor = float(text)
    except ValueError:
        factor = 0.0
    if not factor > 0 or factor == float("inf"):
        raise TinyOSError(f"${TIMEOUT_SCALE_ENV}={text!r}: expected a positive number such as 2 or 0.5")
    return factor


def scaled(seconds: float) -> float:
    """``seconds`` times the timeout scale."""
    return seconds * timeout_scale()
