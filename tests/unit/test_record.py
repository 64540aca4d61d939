"""Recordings' files and their checks (no QEMU run: qemu-img makes the image)."""

from __future__ import annotations

import json

import pytest

from gdb_tinyos.launcher.record import Recording, RecordingError


@pytest.fixture
def kernel(tmp_path):
    path = tmp_path / "k.elf"
    path.write_bytes(b"\x7fELF fake kernel bytes")
    return path


def test_create_then_open_round_trips_and_names_the_kernel(kernel, tmp_path):
    made = Recording.create(tmp_path / "a.rr", kernel, el=2, memory="128M", shared_ram=True)
    (tmp_path / "a.rr").write_bytes(b"events")  # QEMU writes the log while it records
    assert made.image.read_bytes()[:4] == b"QFI\xfb"  # a qcow2 image, made by qemu-img
    opened = Recording.open(tmp_path / "a.rr")
    assert opened == made
    opened.check_kernel(kernel)
    assert opened.qemu_args("replay", tmp_path / "copy.qcow2") == [
        "-icount", f"shift=auto,rr=replay,rrfile={tmp_path / 'a.rr'},rrsnapshot=init",
        "-drive", f"file={tmp_path / 'copy.qcow2'},if=none,id=rr",
    ]  # fmt: skip


def test_another_kernel_is_refused(kernel, tmp_path):
    rec = Recording.create(tmp_path / "a.rr", kernel, el=1, memory="128M", shared_ram=True)
    kernel.write_bytes(kernel.read_bytes() + b"\0")
    with pytest.raises(RecordingError, match="recorded with another kernel"):
        rec.check_kernel(kernel)


def test_incomplete_or_foreign_recordings_are_refused(kernel, tmp_path):
    Recording.create(tmp_path / "a.rr", kernel, el=1, memory="128M", shared_ram=True)
    with pytest.raises(RecordingError, match="a.rr is missing"):
        Recording.open(tmp_path / "a.rr")  # QEMU never wrote the log
    (tmp_path / "a.rr").write_bytes(b"events")
    (tmp_path / "a.rr.json").write_text(json.dumps({"format": "other/1"}))
    with pytest.raises(RecordingError, match="not a tinyos-record/1 sidecar"):
        Recording.open(tmp_path / "a.rr")


def test_a_path_qemu_would_split_is_refused(kernel, tmp_path):
    with pytest.raises(RecordingError, match="comma"):
        Recording.create(tmp_path / "a,b.rr", kernel, el=1, memory="128M", shared_ram=True)
