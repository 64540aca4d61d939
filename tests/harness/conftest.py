"""Fixtures shared by the harness tests."""

from __future__ import annotations

import glob
import os

import pytest

from gdb_tinyos.launcher.processes import pid_alive


@pytest.fixture
def pids_gone_afterwards():
    """Collects pids; after every later fixture's teardown, asserts they are all gone."""
    pids: list[int] = []
    yield pids
    assert [pid for pid in pids if pid_alive(pid)] == []


def own_children() -> set[int]:
    """Live (non-zombie) child processes of this test process, from /proc."""
    pids: set[int] = set()
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/children"):
        with open(path, encoding="ascii") as f:
            pids.update(int(pid) for pid in f.read().split())
    return {pid for pid in pids if pid_alive(pid)}


@pytest.fixture
def no_new_children():
    """Asserts, after every later fixture's teardown, that the test left no child process."""
    before = own_children()
    yield
    assert own_children() - before == set()
