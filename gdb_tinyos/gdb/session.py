"""The plugin's state inside one gdb process: which kernel ELF, its model, this stop's state.

There is one :class:`Session` per gdb (``session()``). It keeps the :class:`KernelModel`
of the loaded ELF (capabilities, contract, locations: once per ELF and settings) and the
:class:`KernelState` of the current stop (everything decoded, once), built lazily on the
cached live target. :mod:`.events` drops the state and the memory cache on every gdb event
that can change what they hold, so a command decodes fresh memory while every command,
function and printer at one stop shares one decode.

Example (inside gdb)::

    s = session()
    s.kernel.path, s.kernel.source      # (PosixPath('/.../tinyos'), "gdb's loaded file")
    s.state().cow().pages               # decoded once at this stop
    s.target.read_register("TTBR1_EL1")

Offline (``tinyos-gdb --core FILE``, ``tinyos-core FILE``): :meth:`Session.open_core` puts a
:class:`~gdb_tinyos.aarch64.coredump.CoreTarget` behind the cache instead of the live
GdbTarget; every read-only command then decodes the dump, and ``require_stopped()`` accepts it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gdb

from ..launcher.kernel import KernelChoice, choose_kernel
from ..aarch64.coredump import kernel_linear_offset
from ..core.errors import BuildIdMismatch, DebugInfoError, TinyOSError
from ..core.target import CachedTarget
from .target import GdbTarget

if TYPE_CHECKING:
    from ..aarch64.coredump import CoreTarget
    from ..debuginfo import DebugInfo
    from ..tinyos.state import KernelModel, KernelState


class Session:
    """Kernel ELF choice, lazily loaded debug info and the cached live target."""

    def __init__(self) -> None:
        self.gdb_target = GdbTarget(linear_offset=self._linear_offset)
        self.target = CachedTarget(self.gdb_target)
        self._kernel: KernelChoice | None = None
        self._debuginfo: DebugInfo | None = None
        self._model: KernelModel | None = None
        self._state: KernelState | None = None
        self.symbol_overrides: dict[str, str] = {}  # capability -> symbol (set tinyos ...)
        self.convention_overrides: dict[str, Any] = {}  # convention -> value (set tinyos ...)
        self._build_id_checked: tuple[int, int | None] | None = None  # (ELF, connection) verified
        self.core: CoreTarget | None = None  # offline: the dump read instead of the live target

    def open_core(self, path: str | os.PathLike[str]) -> CoreTarget:
        """Read the kernel from a ``tinyos-dump`` core (and its sysregs sidecar) from now on,
        refused (BuildIdMismatch) when the dump is of another build than the loaded ELF."""
        from ..aarch64.coredump import CoreTarget  # noqa: PLC0415 - as load_debuginfo: lazy layer import

        core = CoreTarget(path, kernel_elf=self.kernel_path())
        previous = (self.core, self.target)
        self.core, self.target, self._state = core, CachedTarget(core), None
        try:
            check_running_build_id(self)
        except BuildIdMismatch:
            core.close()
            self.core, self.target = previous
            raise
        except TinyOSError:
            pass  # no build-id note readable in the dump: the decoders report their own errors
        if previous[0] is not None:
            previous[0].close()
        return core

    def close_core(self) -> str | None:
        """Back to the live target; the dump's path when one was open."""
        if self.core is None:
            return None
        path = str(self.core.path)
        self.core.close()
        self.core, self._state = None, None
        self.target = CachedTarget(self.gdb_target)
        return path

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

    def model(self) -> KernelModel:
        """The loaded ELF's :class:`KernelModel` (rebuilt when the ELF or a setting changes)."""
        info = self.debuginfo()
        if self._model is None or self._model.info is not info:
            from ..tinyos.state import KernelModel  # noqa: PLC0415 - as load_debuginfo: lazy layer import

            self._model = KernelModel(info, self.symbol_overrides, self.convention_overrides)
            self._state = None
        return self._model

    def state(self) -> KernelState:
        """This stop's :class:`KernelState` over the cached target (built on first use)."""
        model = self.model()
        if self._state is None:
            from ..tinyos.state import KernelState  # noqa: PLC0415 - as load_debuginfo: lazy layer import

            self._check_build_id(model.info)
            self._state = KernelState(model, self.target)
        return self._state

    def invalidate(self) -> None:
        """The target may have changed: forget this stop's memory, registers and decodes."""
        self._state = None
        self.target.invalidate()

    def settings_changed(self) -> None:
        """A ``set tinyos ...`` changed a symbol or a convention: rebuild the model."""
        self._model = None
        self._state = None

    def _check_build_id(self, info: DebugInfo) -> None:
        """BuildIdMismatch when the running kernel is not this ELF (its layouts would decode
        garbage). Checked once per ELF and connection; when the build-id region cannot be
        read (not connected, running, MMU off) the decoders report their own error."""
        connection = gdb.selected_inferior().connection
        key = (id(info), connection.num if connection is not None else None)
        if connection is None or self.core is not None or self._build_id_checked == key:
            return
        try:
            check_running_build_id(self)
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
        self._model = None
        self.gdb_target._linear_offset = self._linear_offset
        self.invalidate()
        if self.core is not None:
            self._recheck_core()

    def _recheck_core(self) -> None:
        """Another ELF: the open dump must be of it too, else it is closed (its layouts
        would decode garbage) and the user told in one line."""
        try:
            check_running_build_id(self)
        except BuildIdMismatch as exc:
            path = self.close_core()
            gdb.write(f"tinyos: closed the core dump {path}: {exc}\n", gdb.STDERR)
        except TinyOSError:
            pass

    def _linear_offset(self) -> int:
        return kernel_linear_offset(self.kernel.path)


def load_debuginfo(path: Path) -> DebugInfo:
    """The kernel's symbols and DWARF layouts (cached on disk by build-id by the layer itself).

    Imported here, not at module level: a broken or missing debug-info layer must not stop
    the commands that can do without it (tinyos-info; pt and va2pa then walk with a
    translator of their own) from loading."""
    from ..debuginfo import DebugInfo  # noqa: PLC0415

    return DebugInfo.open(path)


def check_running_build_id(s: Session) -> bytes:
    """The ELF's build-id when the running kernel carries it (BuildIdMismatch otherwise);
    the note is read where the kernel's image is, whatever the CPU's translation state."""
    from ..aarch64.translated import TranslatedTarget  # noqa: PLC0415 - as load_debuginfo: lazy layer import
    from ..debuginfo import check_build_id  # noqa: PLC0415

    info = s.debuginfo()
    return check_build_id(info, TranslatedTarget(s.target, info.image()))


_SESSION: Session | None = None


def session() -> Session:
    """The gdb process's single session (created on first use)."""
    global _SESSION
    if _SESSION is None:
        _SESSION = Session()
    return _SESSION
