"""The plugin's state inside one gdb process: which kernel ELF, its debug info, the target.

There is one :class:`Session` per gdb (``session()``). Its :class:`CachedTarget` is
invalidated by gdb's events (stop, memory or register written by the user, continue, a new
objfile, exit), so a command decodes from fresh memory while two commands at the same stop
share reads.

Example (inside gdb)::

    s = session()
    s.kernel.path, s.kernel.source      # (PosixPath('/.../tinyos'), "gdb's loaded file")
    s.target.read_register("TTBR1_EL1")
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gdb

from ..launcher.kernel import KernelChoice, choose_kernel
from ..aarch64.coredump import kernel_linear_offset
from ..core.errors import BuildIdMismatch, DebugInfoError, TinyOSError
from ..core.target import CachedTarget
from .target import GdbTarget

if TYPE_CHECKING:
    from ..debuginfo import DebugInfo
    from ..tinyos.kernel import KernelView


class Session:
    """Kernel ELF choice, lazily loaded debug info and the cached live target."""

    def __init__(self) -> None:
        self.gdb_target = GdbTarget(linear_offset=self._linear_offset)
        self.target = CachedTarget(self.gdb_target)
        self._kernel: KernelChoice | None = None
        self._debuginfo: DebugInfo | None = None
        self._view: KernelView | None = None
        self._build_id_checked: tuple[int, int | None] | None = None  # (ELF, connection) verified

    @property
    def kernel(self) -> KernelChoice:
        """The kernel ELF the decoders read: gdb's objfile, else $TINYOS_KERNEL, else the shipped build."""
        if self._kernel is None:
            self._kernel = choose_kernel(gdb.current_progspace().filename, os.environ)
        return self._kernel

    def kernel_path(self) -> Path:
        path = self.kernel.path
        if path is None:
            raise DebugInfoError(
                "no kernel ELF: load one with `file PATH` (or set $TINYOS_KERNEL before starting gdb)"
            )
        return path

    def debuginfo(self) -> DebugInfo:
        """The kernel's parsed debug info, loaded on first use."""
        if self._debuginfo is None:
            self._debuginfo = load_debuginfo(self.kernel_path())
        return self._debuginfo

    def kernel_view(self) -> KernelView:
        """The decoded kernel (:class:`~gdb_tinyos.tinyos.kernel.KernelView`) over the cached target;
        its DWARF locations are resolved once per ELF, memory is read at each call."""
        info = self.debuginfo()
        if self._view is None or self._view.info is not info:
            from ..tinyos.kernel import KernelView  # noqa: PLC0415 - as load_debuginfo: lazy layer import

            self._view = KernelView(info, self.target)
        self._check_build_id(info)
        return self._view

    def _check_build_id(self, info: DebugInfo) -> None:
        """BuildIdMismatch when the running kernel is not this ELF (its layouts would decode
        garbage). Checked once per ELF and connection; when the build-id region cannot be
        read (not connected, running, MMU off) the decoders report their own error."""
        connection = gdb.selected_inferior().connection
        key = (id(info), connection.num if connection is not None else None)
        if connection is None or self._build_id_checked == key:
            return
        from ..debuginfo import check_build_id  # noqa: PLC0415 - as load_debuginfo: lazy layer import

        try:
            check_build_id(info, self.target)
        except BuildIdMismatch:
            raise
        except TinyOSError:
            return
        self._build_id_checked = key

    def forget_kernel(self) -> None:
        """A different ELF may be loaded now: choose again, reparse on next use."""
        self._kernel = None
        self._build_id_checked = None
        if self._debuginfo is not None:
            self._debuginfo.close()
            self._debuginfo = None
        self.gdb_target._linear_offset = self._linear_offset
        self.target.invalidate()

    def _linear_offset(self) -> int:
        return kernel_linear_offset(self.kernel.path)


def load_debuginfo(path: Path) -> DebugInfo:
    """The kernel's symbols and DWARF layouts (cached on disk by build-id by the layer itself).

    Imported here, not at module level: a broken or missing debug-info layer must not stop
    the commands that do not need it (tinyos-info, pt, va2pa) from loading."""
    from ..debuginfo import DebugInfo  # noqa: PLC0415

    return DebugInfo.open(path)


_SESSION: Session | None = None
_HANDLERS: list[tuple[Any, Callable[..., None]]] = []


def session() -> Session:
    """The gdb process's single session (created on first use)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION


def connect_events() -> None:
    """Invalidate caches on gdb's events; connecting twice is a no-op (no duplicate handlers)."""
    if _HANDLERS:
        return
    events = gdb.events

    def invalidate(_event: Any = None) -> None:
        session().target.invalidate()

    def new_kernel(_event: Any = None) -> None:
        session().forget_kernel()

    def release(_event: Any = None) -> None:
        # Nothing of a session outlives it: the RAM mapping goes with the connection.
        session().gdb_target.release_host_ram()

    for name in ("stop", "cont", "exited", "memory_changed", "register_changed", "inferior_call", "connection_removed"):
        registry = getattr(events, name, None)
        if registry is not None:
            registry.connect(invalidate)
            _HANDLERS.append((registry, invalidate))
    for name in ("exited", "connection_removed"):
        registry = getattr(events, name, None)
        if registry is not None:
            registry.connect(release)
            _HANDLERS.append((registry, release))
    for name in ("new_objfile", "clear_objfiles"):
        registry = getattr(events, name, None)
        if registry is not None:
            registry.connect(new_kernel)
            _HANDLERS.append((registry, new_kernel))
