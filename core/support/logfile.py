"""The daily log file (logs/perpdesk_YYYY-MM-DD.log): buffered writes, flushed a few times a second.

Why not loguru's own file sink: it writes and flushes every line as it is logged, one system call
per line on the event loop's thread; with a FILL and a POSITION CLOSED line per trade that makes it
the largest single cost of the stream pipeline bench/stream.py measures. Here a line goes into a
buffer and a small thread writes the buffer out every ``flush_s`` (0.25 s), at once for warnings
and errors, and on close. What a crash can lose is the last quarter second of log lines, never a
journal row (the journal has its own fsynced group commit).

Rotation follows loguru's ``{time:YYYY-MM-DD}`` naming (local date, new file at midnight);
retention deletes day files older than ``retention_days`` when a day file is opened. A write that
fails (disk full, directory removed) drops the buffered lines and never raises: logging must not
take the engine down, and the journal reports a full disk to the trader itself.

The folder is created 0700 and the file 0600 whatever the umask, never through a symlink nor into
a file owned by another user (core.support.safefile): the log holds every fill. At start such a file is
refused with its name (``LogFileError``, which setup turns into a config error); at a later
midnight switch its lines are dropped and counted, as for any file that cannot be written.
"""
from __future__ import annotations

import atexit
import os
import re
import threading
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from core.support.safefile import UnsafeFileError, make_private_dir, open_private

_NAME = re.compile(r"^perpdesk_(\d{4}-\d{2}-\d{2})\.log$")
_BUFFER_LIMIT = 64 * 1024  # characters: written out at once beyond this
_URGENT_LEVEL = 30  # loguru's WARNING


class LogFileError(Exception):
    """The log file or folder must not be used (a symlink, a foreign owner, not a folder)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DailyLogFile:
    """A loguru sink (callable) that also takes pre-formatted lines (``write``)."""

    def __init__(self, directory: Path, retention_days: int, flush_s: float = 0.25) -> None:
        self.directory = directory
        self.retention_days = retention_days
        self.dropped = 0  # lines lost to write errors
        self._lock = threading.Lock()
        self._file: TextIO | None = None
        self._switch_at = 0.0  # epoch seconds of the next local midnight
        self._buffer: list[str] = []
        self._size = 0
        self.refused: str | None = None  # why the current day's file was refused, if it was
        with self._lock:
            self._open_day(time.time())  # the file exists from the start, as loguru's did
        if self.refused is not None:
            raise LogFileError(self.refused)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._flush_loop, args=(flush_s,),
                                        name="perpdesk-log-flush", daemon=True)
        self._thread.start()
        atexit.register(self.close)  # the last lines of a run reach the file at interpreter exit

    def __call__(self, message: Any) -> None:
        """loguru's callable-sink entry: ``message`` is the formatted line with ``.record``."""
        self.write(str(message), urgent=message.record["level"].no >= _URGENT_LEVEL)

    def write(self, line: str, *, urgent: bool = False) -> None:
        now = time.time()
        with self._lock:
            if now >= self._switch_at:
                self._open_day(now)
            self._buffer.append(line)
            self._size += len(line)
            if urgent or self._size >= _BUFFER_LIMIT:
                self._flush_locked()

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        atexit.unregister(self.close)
        self._stop.set()
        with self._lock:
            self._flush_locked()
            self._discard_file()
            self._switch_at = 0.0

    @property
    def path(self) -> Path | None:
        return Path(self._file.name) if self._file is not None else None

    # ------------------------------------------------------------------ internals (lock held)

    def _flush_loop(self, flush_s: float) -> None:
        while not self._stop.wait(flush_s):
            with self._lock:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if not self._buffer:
            return
        text = "".join(self._buffer)
        lines = len(self._buffer)
        self._buffer.clear()
        self._size = 0
        if self._file is None:
            self.dropped += lines
            return
        try:
            self._file.write(text)
            self._file.flush()
        except (OSError, ValueError):
            self.dropped += lines
            self._discard_file()
            self._switch_at = time.time() + 1.0  # reopen (and retry) in a second

    def _discard_file(self) -> None:
        """Close the file, giving up what its own buffer still holds (a failing disk)."""
        if self._file is None:
            return
        try:
            self._file.close()
        except (OSError, ValueError):
            pass  # close() retried the failed write; those lines are already counted as dropped
        self._file = None

    def _open_day(self, now: float) -> None:
        self._flush_locked()
        self._discard_file()
        today = datetime.fromtimestamp(now).date()
        midnight = datetime.combine(today + timedelta(days=1), datetime.min.time())
        self._switch_at = midnight.timestamp()
        path = self.directory / f"perpdesk_{today.isoformat()}.log"
        try:
            make_private_dir(self.directory)
            fd = open_private(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
            self._file = os.fdopen(fd, "a", encoding="utf-8")
        except UnsafeFileError as exc:
            self.refused = f"log file {exc.message}"
            self._switch_at = now + 1.0
            return
        except OSError:
            self._switch_at = now + 1.0  # try again in a second
            return
        self.refused = None
        self._prune(today)

    def _prune(self, today: date) -> None:
        oldest = today - timedelta(days=self.retention_days)
        try:
            entries = list(self.directory.iterdir())
        except OSError:
            return
        for entry in entries:
            m = _NAME.match(entry.name)
            if m and date.fromisoformat(m.group(1)) < oldest:
                try:
                    entry.unlink()
                except OSError:
                    pass
