"""Free TCP ports on the loopback interface, and whether a given process listens on one.

Probing a port by binding it and closing the socket again races with every other
process on the machine, so callers retry on "Address already in use"; proving that QEMU
itself listens reads /proc instead of connecting (QEMU's gdbstub serves one client only)."""

from __future__ import annotations

import os
import socket

LOOPBACK = "127.0.0.1"
_TCP_LISTEN = "0A"
_TCP_ESTABLISHED = "01"


def free_port() -> int:
    """A port the kernel just handed out for 127.0.0.1 and that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]


def _listening_inodes(port: int, states: tuple[str, ...] = (_TCP_LISTEN,)) -> set[int]:
    """Inodes of IPv4 sockets whose local port is ``port``, in one of ``states``."""
    inodes = set()
    with open("/proc/net/tcp", encoding="ascii") as f:
        next(f)
        for line in f:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if state in states and int(local.rsplit(":", 1)[1], 16) == port:
                inodes.add(inode)
    return inodes


def _socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    try:
        names = os.listdir(fd_dir)
    except OSError:  # gone, or someone else's process
        return inodes
    for name in names:
        try:
            link = os.readlink(os.path.join(fd_dir, name))
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(int(link[len("socket:["):-1]))
    return inodes


def process_listens_on(pid: int, port: int) -> bool:
    """True when process ``pid`` owns a socket listening on TCP ``port`` (IPv4)."""
    listening = _listening_inodes(port)
    return bool(listening) and bool(listening & _socket_inodes(pid))


def server_pids(port: int) -> list[int]:
    """Processes (other than this one) serving TCP ``port`` on this host: listening on it or
    holding an accepted connection on it -- e.g. the QEMU whose gdbstub gdb is connected to.
    Only processes whose descriptors we may read are seen."""
    inodes = _listening_inodes(port, (_TCP_LISTEN, _TCP_ESTABLISHED))
    if not inodes:
        return []
    me = os.getpid()
    return [
        pid
        for pid in (int(name) for name in os.listdir("/proc") if name.isdigit())
        if pid != me and inodes & _socket_inodes(pid)
    ]
