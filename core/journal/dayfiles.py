"""The journal's open day files: appending a batch and fsyncing it, a small cache of handles.

Why its own class: appending is where the bytes meet the disk (a half-written batch is cut back,
a file replaced under its name is reopened, a header rewritten with its columns moved is
re-read each batch), and it holds state of its own (the handles, each file's column order);
``Journal`` (writer.py) decides what to write and when, this writes it.
"""
from __future__ import annotations

import contextlib
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from core.journal import schema
from core.journal.errors import JournalError
from core.journal.index import TAIL_BYTES
from core.journal.schema import Row
from core.support.safefile import UnsafeFileError, open_private

HEADER_MAX = 4096  # bytes read to find a header line (a valid one is ~300)


def describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def header_fields(text: str) -> list[str] | None:
    return schema.parse_line(text.removeprefix("\ufeff"))


def family_of(path: Path) -> str:
    return path.name.rsplit("_", 1)[0]


@dataclass(frozen=True, slots=True)
class Appended:
    """One file's part of a batch, as the index takes it from memory: its size before the batch,
    the bytes appended, and the header line and the bytes before ``size`` as read just before."""

    path: Path
    size: int
    data: bytes
    header: str
    tail: bytes


class DayFiles:
    """Append-mode handles of the day files (at most ``max_open_files`` kept open between
    batches) and each one's column order."""

    def __init__(self, directory: Path, max_open_files: int) -> None:
        self.directory = directory
        self.max_open_files = max_open_files
        self.handles: OrderedDict[Path, int] = OrderedDict()
        self._writing: set[Path] = set()  # the files of the batch being written
        self._layouts: dict[Path, tuple[int, ...] | None] = {}  # per open handle; None = schema
        self._headers: dict[Path, str] = {}  # per open handle: its header line as last read

    def write_batch(self, batch: dict[Path, list[Row]]) -> list[Appended]:
        """Append and fsync each file's rows; what was appended to each, for the index."""
        written: list[tuple[int, int]] = []
        appended: list[Appended] = []
        current = self.directory
        self._writing = set(batch)
        try:
            for path, rows in batch.items():
                current = path
                fd, size = self._handle(path)
                order = self._layouts.get(path)
                if order is None:
                    data = "".join([row.line for row in rows]).encode("utf-8")
                else:  # the file's header orders the columns its own way: write in that order
                    data = "".join([schema.line_for(row, order) for row in rows]).encode("utf-8")
                if size == 0:
                    data = schema.header_line(family_of(path)).encode() + data
                tail = os.pread(fd, min(size, TAIL_BYTES), size - min(size, TAIL_BYTES))
                written.append((fd, size))
                write_all(fd, data)
                appended.append(Appended(path, size, data, self._headers.get(path, ""), tail))
            for (fd, _), path in zip(written, batch, strict=True):
                current = path
                os.fsync(fd)
        except (OSError, JournalError) as exc:
            for fd, size in written:  # never leave a half row or half a batch behind
                with contextlib.suppress(OSError):
                    os.ftruncate(fd, size)
            if isinstance(exc, JournalError):
                raise
            raise JournalError(
                f"cannot write journal file {current}: {describe(exc)}"
            ) from exc
        finally:
            self._writing = set()
        return appended

    def _handle(self, path: Path) -> tuple[int, int]:
        """An append-mode fd for a day file (small LRU) and the file's size before this batch.

        A cached fd is reused only while the name still leads to the same file: a spreadsheet
        may save by writing a new file over the name, and rows appended to the replaced one would
        be lost (and its new header never checked).
        """
        fd = self.handles.get(path)
        if fd is not None:
            st = os.fstat(fd)
            try:
                now = os.lstat(path)
                same = (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev)
            except OSError:  # gone, or its folder is: reopening says why
                same = False
            if same:
                self.handles.move_to_end(path)
                # re-read the header each batch (one small pread): a file rewritten in place
                # with its columns moved keeps its inode and, column swaps, even its size
                self._layouts[path] = self._file_layout(path, fd) if st.st_size else None
                return fd, st.st_size
            del self.handles[path]
            self._layouts.pop(path, None)
            self._headers.pop(path, None)
            with contextlib.suppress(OSError):
                os.close(fd)
        created = not os.path.lexists(path)
        try:
            fd = open_private(path, os.O_RDWR | os.O_APPEND | os.O_CREAT)
        except UnsafeFileError as exc:
            raise JournalError(f"journal file {exc.message}") from None
        try:
            size = os.fstat(fd).st_size
            order = self._file_layout(path, fd) if size else None
        except BaseException:
            os.close(fd)
            raise
        self.handles[path] = fd
        self._layouts[path] = order
        if created:  # make the new directory entry durable too
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        # a batch touching more files than the cache holds (a backfill over many days) keeps the
        # files it wrote open until their fsync: closing one here made that fsync fail (EBADF)
        for old_path in [p for p in self.handles if p not in self._writing]:
            if len(self.handles) <= self.max_open_files:
                break
            old = self.handles.pop(old_path)
            self._layouts.pop(old_path, None)
            self._headers.pop(old_path, None)
            with contextlib.suppress(OSError):
                os.close(old)
        return fd, size

    def _file_layout(self, path: Path, fd: int) -> tuple[int, ...] | None:
        """Check the header of the non-empty file open at ``fd``; its column order for appends
        (the header line is kept: the index compares it with the one it recorded)."""
        head = os.pread(fd, HEADER_MAX, 0)  # page cache: a couple of microseconds
        end = head.find(b"\n")
        text = head[:end].decode("utf-8", "replace") if end >= 0 else ""
        self._headers[path] = text
        fields = header_fields(text) if end >= 0 else None
        family = family_of(path)
        return schema.layout(schema.check_header(family, fields, path), family)

    def close_all(self) -> None:
        self._layouts.clear()
        self._headers.clear()
        while self.handles:
            _, fd = self.handles.popitem()
            with contextlib.suppress(OSError):
                os.close(fd)
