"""One engine per journal folder: an exclusive ``flock`` on ``<journal>/engine.lock``.

Why: two engines on one journal folder (two ``--headless``, or a console and a headless) each
journal every fill, close and funding bill, so the CSV holds every row twice and reconcile and
report count double; with the embedded simulator both fork one ``sim-state.json`` and half the
fills vanish from the exchange. So the lock is taken before anything in the folder is read or
written, and the second engine is refused with one line naming the running one.

Why flock and not a pid file: the kernel releases the lock when the process dies, whatever killed
it (SIGKILL, OOM, a crash), so a stale lock after a crash is detected for free: the file is still
there with the dead engine's details, but nobody holds it, and the next start takes it. The file
is never removed (removing it would let a third process lock a new inode while the second still
waits on the old one); a clean stop only empties it.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson

from core.journal.disk import disk_full, full_disk_message
from core.support.errors import PerpdeskError
from core.support.safefile import UnsafeFileError, make_private_dir, open_private

LOCK_FILE = "engine.lock"


class EngineRunning(PerpdeskError):
    """Another engine holds this journal folder's lock (exit 2, one line naming it)."""

    def __init__(self, message: str, holder: LockInfo | None) -> None:
        super().__init__(message)
        self.holder = holder


@dataclass(frozen=True, slots=True)
class LockInfo:
    """Who holds the lock: written into the lock file by its holder, read by the refused one."""

    pid: int
    host: str
    started: datetime
    socket: str  # the control socket's path, "" when the engine serves none

    def to_bytes(self) -> bytes:
        return orjson.dumps({"pid": self.pid, "host": self.host,
                             "started": self.started.isoformat(), "socket": self.socket})

    @staticmethod
    def from_bytes(raw: bytes) -> LockInfo | None:
        try:
            data = orjson.loads(raw)
            return LockInfo(int(data["pid"]), str(data["host"]),
                            datetime.fromisoformat(data["started"]), str(data.get("socket", "")))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None  # empty (a clean stop) or being written


class EngineLock:
    """The held lock; ``release()`` (or the process's death) frees it."""

    def __init__(self, path: Path, fd: int, info: LockInfo) -> None:
        self.path = path
        self.info = info
        self._fd: int | None = fd

    @property
    def held(self) -> bool:
        return self._fd is not None

    def set_socket(self, path: str) -> None:
        """Record the control socket once it listens (the refused start names it)."""
        if self._fd is None:
            return
        self.info = LockInfo(self.info.pid, self.info.host, self.info.started, path)
        _write(self._fd, self.info.to_bytes())

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # nobody runs here now; the file stays (see the module docstring)
        os.close(fd)  # closing the last descriptor releases the flock


def _write(fd: int, payload: bytes) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, payload, 0)


def _lock_path(journal_dir: Path) -> Path:
    return Path(journal_dir) / LOCK_FILE


def read_holder(journal_dir: Path) -> LockInfo | None:
    """The running engine of ``journal_dir`` (None when no process holds its lock)."""
    path = _lock_path(journal_dir)
    try:
        fd = open_private(path, os.O_RDONLY)
    except (FileNotFoundError, UnsafeFileError):
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return LockInfo.from_bytes(os.pread(fd, 4096, 0)) or LockInfo(0, "?", datetime.now(UTC), "")
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None  # nobody holds it: a clean stop, or a crashed engine (stale contents)
    finally:
        os.close(fd)


def describe_holder(journal_dir: Path, info: LockInfo | None, attach_hint: str = "") -> str:
    """One line: which engine runs on this journal folder, since when, and how to reach it."""
    if info is None:
        who = "another engine"
    else:
        who = (f"engine pid {info.pid} on {info.host} since "
               f"{info.started.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S')} UTC")
    line = f"perpdesk: journal {journal_dir} is in use by {who}"
    return line + (f"; {attach_hint}" if attach_hint else "; stop it first")


def _lock_now(fd: int, tries: int = 5) -> None:
    """LOCK_EX without waiting on an engine; a few quick retries, because ``read_holder`` (a
    console looking for the engine) holds a shared lock for a moment when none runs."""
    for attempt in range(tries):
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if attempt == tries - 1:
                raise
            time.sleep(0.02)


def acquire(journal_dir: Path, *, attach_hint: str = "") -> EngineLock:
    """Take the journal folder's lock or raise EngineRunning (one line naming the holder).

    The folder is created (0700) if missing: the lock comes before the journal and the
    simulator's state file are opened. The lock file is 0600, never followed through a link.
    """
    journal_dir = Path(journal_dir)
    path = _lock_path(journal_dir)
    try:
        make_private_dir(journal_dir)
        fd = open_private(path, os.O_RDWR | os.O_CREAT)
    except UnsafeFileError as exc:
        raise PerpdeskError(f"journal lock: {exc.message}") from None
    except OSError as exc:
        raise _failed(journal_dir, path, exc) from None
    try:
        _lock_now(fd)
    except OSError as exc:
        holder = LockInfo.from_bytes(os.pread(fd, 4096, 0))
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise PerpdeskError(f"journal lock {path}: {exc.strerror or exc}") from None
        raise EngineRunning(describe_holder(journal_dir, holder, attach_hint), holder) from None
    info = LockInfo(os.getpid(), socket.gethostname(), datetime.now(UTC), "")
    try:
        _write(fd, info.to_bytes())
    except OSError as exc:
        os.close(fd)
        raise _failed(journal_dir, path, exc) from None
    return EngineLock(path, fd, info)


def _failed(journal_dir: Path, path: Path, exc: OSError) -> PerpdeskError:
    """The lock is the first thing a start writes: a full disk is named as the journal names it."""
    if disk_full(journal_dir, exc):
        return PerpdeskError(full_disk_message(journal_dir))
    return PerpdeskError(f"journal lock {path}: {exc.strerror or exc}")
