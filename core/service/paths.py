"""Where control sockets live: one private folder per user, one socket per journal folder.

Why not beside the journal: a Unix socket path is limited to 107 bytes (sun_path), and a journal
folder can be deep. The folder is ``$PERPDESK_RUNTIME_DIR`` if set, else
``$XDG_RUNTIME_DIR/perpdesk`` (systemd's per-user tmpfs, gone at logout), else
``/tmp/perpdesk-<uid>``; it is 0700 and must belong to this user (a folder planted by another
user in /tmp is refused by name). The socket of a journal folder is named after a hash of the
folder's real path, so every process finds it from the config alone, and the folder doubles as
the registry `perpdesk status` lists.
"""
from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from core.support.errors import PerpdeskError
from core.support.safefile import make_private_dir

SUN_PATH_MAX = 107  # Linux: 108 bytes including the terminating NUL


class RuntimeDirError(PerpdeskError):
    """The socket folder cannot be used safely (names it and why)."""


def runtime_dir() -> Path:
    explicit = os.environ.get("PERPDESK_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and Path(xdg).is_dir():
        return Path(xdg) / "perpdesk"
    return Path("/tmp") / f"perpdesk-{os.geteuid()}"


def registry_dirs() -> list[Path]:
    """Every folder this user's engines may have put a socket in (an engine started by systemd
    has XDG_RUNTIME_DIR, one started from cron may not), this user's own only."""
    if os.environ.get("PERPDESK_RUNTIME_DIR"):
        candidates = [runtime_dir()]
    else:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        candidates = ([Path(xdg) / "perpdesk"] if xdg else []) + [Path("/tmp") / f"perpdesk-{os.geteuid()}"]
    out = []
    for folder in candidates:
        try:
            st = os.lstat(folder)
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and folder not in out:
            out.append(folder)
    return out


def private_runtime_dir() -> Path:
    """The socket folder, created 0700 if missing; refused when another user owns it or others
    can enter it (RuntimeDirError)."""
    folder = runtime_dir()
    try:
        make_private_dir(folder)
        st = os.lstat(folder)
    except OSError as exc:
        raise RuntimeDirError(f"socket folder {folder}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RuntimeDirError(f"socket folder {folder} is not a folder; remove it")
    if st.st_uid != os.geteuid():
        raise RuntimeDirError(f"socket folder {folder} belongs to uid {st.st_uid}, not to this "
                              f"user (uid {os.geteuid()}); remove it or set PERPDESK_RUNTIME_DIR")
    if stat.S_IMODE(st.st_mode) & 0o077:
        raise RuntimeDirError(f"socket folder {folder} is open to other users "
                              f"({stat.S_IMODE(st.st_mode):o}); chmod 700 it")
    return folder


def journal_key(journal_dir: Path) -> str:
    return hashlib.sha256(str(Path(journal_dir).resolve()).encode()).hexdigest()[:16]


def socket_path(journal_dir: Path) -> Path:
    """The control socket of the engine on ``journal_dir`` (whether or not one runs)."""
    path = runtime_dir() / f"{journal_key(journal_dir)}.sock"
    if len(os.fsencode(path)) > SUN_PATH_MAX:
        raise RuntimeDirError(f"socket path {path} is longer than {SUN_PATH_MAX} bytes; set "
                              "PERPDESK_RUNTIME_DIR to a shorter folder")
    return path
