"""Registering the commands with gdb, once: loading the plugin twice adds nothing twice.

Command modules are the files of :mod:`gdb_tinyos.gdb.commands`; a class decorated with :func:`command` is
registered as a CLI command (``cow-x`` also as ``cow x``) and as an MI command (``-cow-x``);
a decorated :class:`~.base.TinyOSFunction` as a convenience function (``$name(...)``).
A module that fails to import is reported in one line and skipped, so one broken command
never takes the others down.
"""

from __future__ import annotations

import importlib
import pkgutil

from . import commands, parameters
from .base import CowPrefix, TinyOSCommand, TinyOSFunction, TinyOSMICommand
from . import events

_COMMAND_CLASSES: list[type[TinyOSCommand] | type[TinyOSFunction]] = []
_REGISTERED: dict[str, object] = {}


def command(cls):
    """Class decorator: mark a TinyOSCommand or TinyOSFunction for registration."""
    if cls not in _COMMAND_CLASSES:
        _COMMAND_CLASSES.append(cls)
    return cls


def register_all() -> list[str]:
    """Import the command modules and register everything; returns one line per failure."""
    events.connect()
    parameters.register()
    if "cow" not in _REGISTERED:
        _REGISTERED["cow"] = CowPrefix()
    failures = _import_command_modules()
    failures += _import_printers()
    failures += _install_unwinder()
    failures += _install_tui()
    for cls in _COMMAND_CLASSES:
        _register(cls)
    return failures


def registered_names() -> list[str]:
    return sorted(_REGISTERED)


def _import_command_modules() -> list[str]:
    failures = []
    for info in pkgutil.iter_modules(commands.__path__):
        if info.name.startswith("_"):
            continue
        try:
            importlib.import_module(f"{commands.__name__}.{info.name}")
        except ImportError as exc:
            failures.append(f"tinyos: commands in {info.name}.py are unavailable: {exc}")
    return failures


def _import_printers() -> list[str]:
    try:
        importlib.import_module(f"{__package__}.printers")
    except ImportError as exc:
        return [f"tinyos: pretty printers are unavailable: {exc}"]
    return []


def _install_unwinder() -> list[str]:
    """`bt` through the kernel's exception entry (gdb/unwinder.py)."""
    try:
        importlib.import_module(f"{__package__}.unwinder").register_unwinder()
    except ImportError as exc:
        return [f"tinyos: the trap frame unwinder is unavailable: {exc}"]
    return []


def _install_tui() -> list[str]:
    """`layout cow` (gdb/tui.py)."""
    try:
        return importlib.import_module(f"{__package__}.tui").install()
    except ImportError as exc:
        return [f"tinyos: `layout cow` is unavailable: {exc}"]


def _register(cls: type[TinyOSCommand] | type[TinyOSFunction]) -> None:
    if issubclass(cls, TinyOSFunction):
        if "$" + cls.name not in _REGISTERED:
            _REGISTERED["$" + cls.name] = cls()
        return
    if cls.name in _REGISTERED:
        return
    cli = cls()
    _REGISTERED[cls.name] = cli
    if cls.name.startswith("cow-"):
        _REGISTERED["cow " + cls.name[4:]] = cls("cow " + cls.name[4:])
    _REGISTERED["-" + cls.name] = TinyOSMICommand(cli)
