"""The gdb_tinyos loader: ``source /path/to/gdb_tinyos/gdbinit.py`` inside gdb-multiarch.

What it does, each step idempotent (sourcing it twice changes nothing):

1. puts the directory holding the ``gdb_tinyos`` package on ``sys.path`` (the repository
   root, or the site-packages it was installed into);
2. adds the project's virtualenv (``$TINYOS_VENV``, else ``<repo>/.venv``) with
   ``site.addsitedir``: gdb embeds Debian's python3.11, which does not see the venv's
   packages on its own;
3. checks the Python dependencies (pyelftools, tabulate) and, when one is missing, prints
   ONE line naming the fix and stops;
4. registers the commands (``help cow``, ``tinyos-info``...) and says which kernel ELF
   the decoders read (gdb's loaded file, else $TINYOS_KERNEL, else the shipped build).

This file runs inside gdb as a script (``source``), not as a module import.
"""

import importlib
import os
import site
import sys

import gdb

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(_PACKAGE_DIR)
_PYTHON = f"python{sys.version_info.major}.{sys.version_info.minor}"
_DEPENDENCIES = {"elftools": "pyelftools", "tabulate": "tabulate"}


def _venv_site_packages() -> str:
    venv = os.environ.get("TINYOS_VENV") or os.path.join(_ROOT, ".venv")
    return os.path.join(venv, "lib", _PYTHON, "site-packages")


def _extend_path() -> str:
    if _ROOT not in sys.path:
        sys.path.insert(0, _ROOT)
    venv_site = _venv_site_packages()
    if os.path.isdir(venv_site) and venv_site not in sys.path:
        site.addsitedir(venv_site)
    return venv_site


def _missing_dependencies() -> list[str]:
    missing = []
    for module, package in _DEPENDENCIES.items():
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(package)
    return missing


def _load() -> None:
    venv_site = _extend_path()
    missing = _missing_dependencies()
    if missing:
        gdb.write(
            f"tinyos: cannot load, missing Python package(s) {', '.join(missing)} for gdb's {_PYTHON}: "
            f"run ./scripts/test or pip install gdb-tinyos into {venv_site} (or set $TINYOS_VENV)\n",
            gdb.STDERR,
        )
        return
    try:
        from gdb_tinyos import __version__
        from gdb_tinyos.gdb.registry import register_all
        from gdb_tinyos.gdb.session import session
    except ImportError as exc:
        gdb.write(f"tinyos: cannot load the plugin from {_PACKAGE_DIR}: {exc}\n", gdb.STDERR)
        return

    first_time = not getattr(gdb, "_tinyos_loaded", False)
    for failure in register_all():
        gdb.write(failure + "\n", gdb.STDERR)
    if first_time:
        gdb._tinyos_loaded = True  # marks this gdb process: a second `source` stays quiet
        kernel = session().kernel
        where = str(kernel.path) if kernel.path else "none (load one with `file PATH`)"
        gdb.write(f"tinyos: gdb_tinyos {__version__} loaded; kernel ELF: {where} [{kernel.source}]; `help cow`, `tinyos-info`\n")


_load()
