"""A small disk of a test's own, and filling it: the journal's full-disk messages are checked on a
real filesystem that refuses a write, not on a mocked error."""
from __future__ import annotations

import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_disk(mnt: Path) -> Iterator[Path]:
    """A 4 MB tmpfs mounted at ``mnt`` (created), so that filling it fills no one else's disk;
    unmounted on exit. Mounting needs root: without it the test is skipped."""
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root and mount to make a small full disk")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def fill(disk: Path) -> None:
    """Write ``disk/filler`` until the disk refuses (ENOSPC), in big blocks then small ones,
    unbuffered, so that not one byte is left."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for block in (65536, 512, 1):
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError as exc:  # the disk is full: the next, smaller block
                assert exc.errno == errno.ENOSPC, exc
    finally:
        os.close(fd)
