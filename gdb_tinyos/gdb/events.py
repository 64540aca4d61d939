"""The plugin's one subscription to gdb's events, and what each one invalidates.

Every cache the plugin keeps lives behind :class:`~.session.Session`: the per-stop
:class:`~gdb_tinyos.tinyos.state.KernelState` and the memory cache under it, and the kernel
model of the loaded ELF. This module is the only place that connects to ``gdb.events``
for them; other features subscribe here (``on("stop", callback)``) instead of to gdb,
so loading the plugin twice connects nothing twice and a reverse stop, a user's ``set
var``, an inferior call and a new ``file`` all invalidate the same way.

Example (inside gdb)::

    connect()                                  # idempotent: the loader calls it
    on("stop", lambda event: print("stopped"))  # after the state was dropped
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import gdb

from .session import session

# gdb event -> what it means for the plugin's caches
INVALIDATING = ("stop", "cont", "exited", "memory_changed", "register_changed", "inferior_call",
                "connection_removed")
NEW_KERNEL = ("new_objfile", "clear_objfiles")
# Nothing of a session outlives it: the host RAM mapping goes with the connection.
SESSION_ENDS = ("exited", "connection_removed")

_CONNECTED: list[tuple[Any, Callable[..., None]]] = []
_LISTENERS: dict[str, list[Callable[[Any], None]]] = defaultdict(list)


def on(name: str, callback: Callable[[Any], None]) -> None:
    """Call ``callback(event)`` after the plugin's own handling of gdb event ``name``."""
    if callback not in _LISTENERS[name]:
        _LISTENERS[name].append(callback)


def connect() -> None:
    """Subscribe once per gdb process (a second call is a no-op)."""
    if _CONNECTED:
        return
    for name in INVALIDATING + NEW_KERNEL:
        registry = getattr(gdb.events, name, None)
        if registry is None:  # an older gdb without this event
            continue
        handler = _handler(name)
        registry.connect(handler)
        _CONNECTED.append((registry, handler))


def _handler(name: str) -> Callable[[Any], None]:
    def handle(event: Any = None) -> None:
        if name in NEW_KERNEL:
            session().forget_kernel()
        else:
            session().invalidate()
        if name in SESSION_ENDS:
            session().gdb_target.release_host_ram()
        if name == "stop" and session().core is not None and gdb.selected_inferior().pid != 0:
            # A live target stopped: the session reads it from now on, not the dump.
            gdb.write(f"tinyos: closed the core dump {session().close_core()}: a live target is connected\n",
                      gdb.STDERR)
        for listener in list(_LISTENERS[name]):
            try:
                listener(event)
            except Exception as exc:  # noqa: BLE001 - a gdb event boundary: one line, the others still run
                gdb.write(f"tinyos: after gdb's {name} event: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}\n",
                          gdb.STDERR)

    return handle
