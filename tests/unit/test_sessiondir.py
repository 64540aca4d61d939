"""Session directories: private, refused when unsafe, removed at the end, stale ones cleaned."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gdb_tinyos.launcher.sessiondir import OWNER_FILE, SessionDir, SessionDirError, clean_stale, live_sessions, private_dir


@pytest.fixture
def root(tmp_path):
    return private_dir(tmp_path / "tinyos-gdb-test")


def test_created_private_owned_and_removed(root):
    with SessionDir.create("demo", root=root) as d:
        assert d.path == root / "demo"
        assert os.stat(d.path).st_mode & 0o777 == 0o700
        pid, _ = (d.path / OWNER_FILE).read_text().split()
        assert int(pid) == os.getpid()
        assert list(live_sessions(root)) == [d.path]
    assert not (root / "demo").exists()


def test_a_running_session_name_is_refused(root):
    with SessionDir.create("demo", root=root):
        with pytest.raises(SessionDirError, match="is running"):
            SessionDir.create("demo", root=root)


@pytest.mark.parametrize("name", ["../x", "", "a/b", ".hidden", "x" * 65])
def test_bad_names_are_refused(root, name):
    with pytest.raises(SessionDirError, match="bad session name"):
        SessionDir.create(name, root=root)


def test_world_writable_or_symlinked_directories_are_refused(tmp_path):
    loose = tmp_path / "loose"
    loose.mkdir()
    os.chmod(loose, 0o777)
    with pytest.raises(SessionDirError, match="writable by others"):
        private_dir(loose)
    os.chmod(loose, 0o720)
    with pytest.raises(SessionDirError, match="writable by others"):
        SessionDir.create("x", root=loose)
    link = tmp_path / "link"
    link.symlink_to(loose)
    with pytest.raises(SessionDirError, match="not a directory"):
        private_dir(link)


def test_someone_elses_directory_is_refused(tmp_path):
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, 12345, -1)  # the tests run as root, as the set-up does
    with pytest.raises(SessionDirError, match="belongs to uid 12345"):
        private_dir(theirs)


def test_stale_sessions_of_dead_owners_are_cleaned(root):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = root / "stale"
    stale.mkdir(mode=0o700)
    (stale / OWNER_FILE).write_text(f"{dead.stdout.strip()} 1\n")
    (stale / "console.sock").write_text("")
    old_sock = root / f"{dead.stdout.strip()}.sock"
    old_sock.write_text("")
    with SessionDir.create("fresh", root=root) as fresh:
        assert not stale.exists() and not old_sock.exists()
        assert clean_stale(root) == []  # ours stays: its owner runs
        assert fresh.path.exists()


def test_a_session_still_claiming_its_directory_is_left_alone(root):
    """Another session's directory seen between its mkdir and its owner file being whole
    (missing, or empty as a plain write shows it for a moment) is young: not stale. Two
    test workers once removed each other's directory this way (QEMU then found no RAM file)."""
    for name, owner in (("made", None), ("claiming", ""), ("half", "123")):
        (root / name).mkdir(mode=0o700)
        if owner is not None:
            (root / name / OWNER_FILE).write_text(owner)
    assert clean_stale(root) == []
    assert all((root / name).exists() for name in ("made", "claiming", "half"))
    old = 1_000_000  # past the grace period: a claim never finished is stale
    for name in ("made", "claiming", "half"):
        os.utime(root / name, (old, old))
    assert sorted(p.name for p in clean_stale(root)) == ["claiming", "half", "made"]


def test_the_owner_file_appears_whole(root, monkeypatch):
    """It is written aside and renamed into place: no reader ever sees it partial."""
    seen = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: seen.append((Path(src).read_text(), Path(dst).exists()))
                        or real_replace(src, dst))
    with SessionDir.create("whole", root=root) as d:
        assert len(seen) == 1 and seen[0][0].split()[0] == str(os.getpid()) and seen[0][1] is False
        assert [p.name for p in d.path.iterdir()] == [OWNER_FILE]


def test_a_claim_landing_while_the_owner_is_read_keeps_the_directory(root, monkeypatch):
    """The clean-up reads a directory's owner once: a session claiming its directory right
    after that read (owner file renamed into place) must not lose it."""
    from gdb_tinyos.launcher import sessiondir

    claiming = root / "claiming"
    claiming.mkdir(mode=0o700)
    read = sessiondir._owner

    def claimed_after_reading(directory):
        owner = read(directory)
        if directory == claiming and not (directory / OWNER_FILE).exists():
            (directory / OWNER_FILE).write_text(f"{os.getpid()} {sessiondir._start_time(os.getpid())}\n")
        return owner

    monkeypatch.setattr(sessiondir, "_owner", claimed_after_reading)
    assert clean_stale(root) == [] and claiming.exists()


def test_sessions_clean_up_and_claim_under_one_lock(root, monkeypatch):
    """Two sessions starting at once clean up and claim one after the other: while one
    cleans, the root directory is locked (flock), so no clean-up runs between another's
    mkdir and its claim."""
    import fcntl

    from gdb_tinyos.launcher import sessiondir

    held = []
    clean = sessiondir.clean_stale

    def try_lock_meanwhile(base):
        fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held.append(False)
        except BlockingIOError:
            held.append(True)
        finally:
            os.close(fd)
        return clean(base)

    monkeypatch.setattr(sessiondir, "clean_stale", try_lock_meanwhile)
    with SessionDir.create("locked", root=root):
        pass
    assert held == [True]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)  # released once created
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
