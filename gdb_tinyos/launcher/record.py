"""Record and replay of a whole QEMU run (QEMU's deterministic record/replay, icount based),
the ground for reverse execution in gdb (``reverse-stepi``, ``reverse-continue``, watchpoints
backwards).

A recording named ``FILE`` is three files side by side:

- ``FILE``: QEMU's event log (``-icount ...,rr=record,rrfile=FILE``): interrupts, timers and
  every byte typed on the serial console;
- ``FILE.qcow2``: the disk image holding the snapshot ``init`` QEMU takes when the run
  starts (``rrsnapshot=init``); replay and every reverse step start from it;
- ``FILE.json``: what the replay must match (``tinyos-record/1``): the kernel ELF (path and
  SHA-256 of its bytes), exception level, RAM size, RAM backend.

A replay uses a copy of the image in the session directory (reverse execution may write to
it), so a recording can be replayed any number of times.

Example::

    rec = Recording.create("/tmp/fw.rr", kernel, el=1, memory="128M", shared_ram=True)
    rec.qemu_args("record", rec.image)      # -icount ... -drive ...
    Recording.open("/tmp/fw.rr").check_kernel(kernel)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import LaunchError

FORMAT = "tinyos-record/1"
SNAPSHOT = "init"
QEMU_IMG = "qemu-img"


class RecordingError(LaunchError):
    """A recording cannot be made, read, or replayed with this kernel/machine."""


def kernel_digest(kernel: Path) -> str:
    """SHA-256 of the kernel ELF's bytes: the replay must load exactly what was recorded."""
    h = hashlib.sha256()
    with open(kernel, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class Recording:
    """A recording's files and the machine it was made on."""

    path: Path
    kernel: str
    kernel_sha256: str
    el: int
    memory: str
    shared_ram: bool

    @property
    def image(self) -> Path:
        return self.path.with_name(self.path.name + ".qcow2")

    @property
    def sidecar(self) -> Path:
        return self.path.with_name(self.path.name + ".json")

    @staticmethod
    def _usable(path: Path) -> Path:
        # QEMU's option syntax splits on commas: such a path would be cut, not quoted.
        if "," in str(path):
            raise RecordingError(f"{path}: QEMU cannot take a path with a comma; choose another name")
        return path

    @classmethod
    def create(cls, path: str | os.PathLike[str], kernel: Path, el: int, memory: str, shared_ram: bool) -> Recording:
        """Writes the sidecar and an empty snapshot image for a new recording at ``path``."""
        from .qemu import require_tool  # noqa: PLC0415 - qemu imports this module

        qemu_img = require_tool(QEMU_IMG, "qemu-utils")
        path = cls._usable(Path(path).resolve())
        if not path.parent.is_dir():
            raise RecordingError(f"cannot record to {path}: {path.parent} is not a directory")
        rec = cls(path, str(Path(kernel).resolve()), kernel_digest(kernel), el, memory, shared_ram)
        made = subprocess.run([qemu_img, "create", "-q", "-f", "qcow2", str(rec.image), "1M"], capture_output=True, text=True)
        if made.returncode != 0:
            raise RecordingError(f"qemu-img could not create {rec.image}: {made.stderr.strip()}")
        doc = {"format": FORMAT, "kernel": rec.kernel, "kernel_sha256": rec.kernel_sha256,
               "el": el, "memory": memory, "shared_ram": shared_ram}  # fmt: skip
        rec.sidecar.write_text(json.dumps(doc, indent=2) + "\n")
        return rec

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Recording:
        """The recording at ``path``; RecordingError naming the missing or malformed part."""
        path = cls._usable(Path(path).resolve())
        sidecar = path.with_name(path.name + ".json")
        for part in (path, path.with_name(path.name + ".qcow2"), sidecar):
            if not part.is_file():
                raise RecordingError(f"{path} is not a complete recording: {part} is missing (make one with --record)")
        try:
            doc = json.loads(sidecar.read_text())
            if doc.get("format") != FORMAT:
                raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT}")
            return cls(path, str(doc["kernel"]), str(doc["kernel_sha256"]), int(doc["el"]), str(doc["memory"]),
                       bool(doc["shared_ram"]))  # fmt: skip
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise RecordingError(f"{sidecar} is not a {FORMAT} sidecar: {exc}") from None

    def check_kernel(self, kernel: Path) -> None:
        """RecordingError unless ``kernel`` has the recorded kernel's exact bytes."""
        if kernel_digest(kernel) != self.kernel_sha256:
            raise RecordingError(
                f"{self.path} was recorded with another kernel ({self.kernel}, sha256 {self.kernel_sha256[:16]}…); "
                f"{kernel} differs: replay with --kernel {self.kernel}"
            )

    def replay_image(self, session_dir: Path) -> Path:
        """A private copy of the snapshot image for one replay."""
        copy = session_dir / "rr.qcow2"
        shutil.copyfile(self.image, copy)
        return copy

    def qemu_args(self, mode: str, image: Path) -> list[str]:
        """QEMU's options to ``record`` or ``replay`` this recording with snapshot ``image``."""
        return [
            "-icount", f"shift=auto,rr={mode},rrfile={self.path},rrsnapshot={SNAPSHOT}",
            "-drive", f"file={image},if=none,id=rr",
        ]  # fmt: skip
