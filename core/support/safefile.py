"""Private files: trade history and logs readable by their owner only, never through a planted link.

Why: the journal and the log hold a trader's whole history (sizes, prices, PnL, order ids). Created
with the process umask they were world-readable (0644, 0666 and folders 0777 under umask 000), and
a writer that follows symlinks appends those rows wherever a planted ``trades_<day>.csv -> ...``
points. So files are created 0600 and folders 0700 whatever the umask (the umask can only remove
bits, and these modes have none it could add), a symlink is never followed (O_NOFOLLOW), and a file
owned by another user is refused (fstat after open, so the check is about the file actually open).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


class UnsafeFileError(Exception):
    """A file or folder that must not be used as is; the message names it and why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and missing parents) as 0700 folders; an existing folder is left as is.

    Existing folders keep their mode: the trader may have chosen it (a shared parent, or the
    working directory itself as the journal folder). OSError if it cannot be created.
    """
    path = Path(path)
    missing: list[Path] = []
    probe = path
    while not probe.exists():
        if probe.is_symlink():  # a dangling link: mkdir through it would create its target
            raise UnsafeFileError(f"{probe} is a symbolic link to nothing; refusing to use it")
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            continue  # created meanwhile by another process
        os.chmod(folder, DIR_MODE)  # the umask cannot add bits, but an odd ACL default might
    if not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), str(path))


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a named pipe"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def check_entry(path: Path) -> os.stat_result | None:
    """The lstat of ``path`` if it is a regular file of ours, None if absent; else UnsafeFileError.

    A cheap check before opening, so that a named pipe is never opened (the open would block).
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat.S_ISLNK(st.st_mode):
        raise UnsafeFileError(f"{path} is a symbolic link; refusing to follow it")
    if not stat.S_ISREG(st.st_mode):
        raise UnsafeFileError(f"{path} is {_kind(st.st_mode)}, not a regular file")
    _check_owner(path, st)
    return st


def _check_owner(path: Path, st: os.stat_result) -> None:
    uid = os.geteuid()
    if st.st_uid != uid:
        raise UnsafeFileError(f"{path} is owned by another user (uid {st.st_uid}, this process "
                              f"runs as uid {uid}); refusing to use it")


def open_private(path: Path, flags: int) -> int:
    """``os.open`` for a private file: created 0600, no symlink followed, owner checked.

    ``flags`` are the usual os.O_* flags (O_NOFOLLOW and O_CLOEXEC are added). Raises
    UnsafeFileError for a link, a non-regular file or a foreign owner, OSError otherwise.
    """
    absent = check_entry(path) is None
    try:
        fd = os.open(path, flags | os.O_NOFOLLOW | os.O_CLOEXEC, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafeFileError(f"{path} is a symbolic link; refusing to follow it") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeFileError(f"{path} is {_kind(st.st_mode)}, not a regular file")
        _check_owner(path, st)
        if absent and flags & os.O_CREAT and stat.S_IMODE(st.st_mode) != FILE_MODE:
            os.fchmod(fd, FILE_MODE)  # a umask such as 0o777 removed the owner's own bits
    except BaseException:
        os.close(fd)
        raise
    return fd


def write_atomic(path: Path, payload: bytes) -> None:
    """Replace ``path`` with ``payload`` so that a crash leaves the old file or the new, never a torn one.

    A private temporary file beside it, fsync, rename over, fsync the folder (the rename itself
    must reach the disk). Raises UnsafeFileError or OSError.
    """
    path = Path(path)
    make_private_dir(path.parent)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def read_private(path: Path) -> bytes | None:
    """The bytes of a private file, None if absent; UnsafeFileError for a link or a foreign file."""
    if check_entry(path) is None:
        return None
    with os.fdopen(open_private(path, os.O_RDONLY), "rb") as fh:
        return fh.read()


_OURS = re.compile(r"^(?:.*\.csv|\.index\.sqlite3.*|account\.json|state\.json|sim-state\.json|engine\.lock|"
                   r"unconfirmed_closes\.json|\..*\.tmp|perpdesk_.*\.log.*)$")


def tighten(folders: Iterable[Path], shared: Iterable[Path] = ()) -> list[Path]:
    """Make the files an older version created readable by others (0644) private again: 0600
    for perpdesk's own files in ``folders``, 0700 for each folder itself unless it is one of
    ``shared`` (the working directory or the config's folder, whose mode the trader chose).

    Only regular files of this user with perpdesk's names are changed (never through a link);
    a file that cannot be changed is left as it is. Returns what was changed, for one log line.
    """
    keep = {os.path.realpath(p) for p in shared}
    changed: list[Path] = []
    for folder in folders:
        folder = Path(folder)
        try:
            st = os.lstat(folder)
        except OSError:
            continue  # not created yet: it will be created private
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            continue
        if stat.S_IMODE(st.st_mode) & 0o077 and os.path.realpath(folder) not in keep:
            with contextlib.suppress(OSError):
                os.chmod(folder, DIR_MODE)
                changed.append(folder)
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            if not _OURS.match(entry.name):
                continue
            if _tighten_file(Path(entry.path)):
                changed.append(Path(entry.path))
    return changed


def _tighten_file(path: Path) -> bool:
    """chmod 0600 through a descriptor opened without following a link; True if changed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return False  # a link, a vanished file, one we may not read: left as it is
    try:
        st = os.fstat(fd)
        if not (stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
                and stat.S_IMODE(st.st_mode) & 0o077):
            return False
        os.fchmod(fd, FILE_MODE)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)
