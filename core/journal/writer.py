"""The journal writer: group commit to CSV day files, idempotent across restarts.

Why group commit: one fsync per fill would cap us at a few hundred fills a second on a laptop disk
and stall the UI loop; batching rows and fsyncing each touched file once per batch keeps the
durability promise ("flush() returned, so it is on disk") at a tiny fraction of the cost.

Why ids are reserved at record time rather than at write time: the venue stream and the REST
backfill can deliver the same fill twice within one batch window, and both copies would otherwise
slip past a check that only looks at what is already on disk.

Files: created 0600 in a 0700 folder whatever the umask, never through a symlink nor into a file
owned by another user (core.safefile). Each file's header is checked when it is opened: the same
columns in another order (a spreadsheet moved them) is that file's layout, and rows are appended
in it; missing or unknown columns refuse with the file and the columns named.

Concurrency: record_* runs on the event loop thread; the batch is written in a worker thread so an
fsync never freezes the console. ``_io_lock`` serialises writers (and keeps batches in order),
``_batch_lock`` guards the in-memory batch and the id indexes.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import threading
from collections import OrderedDict
from datetime import datetime
from pathlib import Path

from loguru import logger

from core.events import RiskEvent
from core.journal import schema
from core.journal.errors import JournalError
from core.journal.schema import FILL_EVENT, Row
from core.model import CloseResult, Fill, FundingPayment, OrderUpdate, PositionSnapshot
from core.safefile import UnsafeFileError, check_entry, make_private_dir, open_private

__all__ = ["Journal", "JournalError", "day_files", "repair_torn_tail"]

_FILE_RE = re.compile(
    r"^(" + "|".join(schema.FAMILIES) + r")_(\d{4}-\d{2}-\d{2})\.csv$"
)
_ERROR_RETRY_S = 1.0
_HEADER_MAX = 4096  # bytes read to find a header line (a valid one is ~300)



def _describe(exc: OSError) -> str:
    return exc.strerror or str(exc)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def day_files(directory: Path) -> list[tuple[str, Path]]:
    """(family, path) of every journal day file in ``directory``, oldest day first.

    Every entry with a day file's name is listed, a folder or a link too: opening it refuses with
    its name (a ``funding_<day>.csv`` folder read as "no funding" would hide money silently).
    """
    found: list[tuple[str, str, Path]] = []
    if directory.is_dir():
        for entry in directory.iterdir():
            m = _FILE_RE.match(entry.name)
            if m:
                found.append((m.group(2), m.group(1), entry))
    found.sort()
    return [(family, path) for _, family, path in found]


def repair_torn_tail(path: Path) -> int:
    """Cut a torn last line left by a crash; returns the number of bytes cut (0 if intact).

    Torn means: the file does not end in a newline, or its last line is not one CSV record with
    the header's column count. Only the last line is judged: rows are written as whole lines, so a
    crash can only damage the tail.
    """
    _check_entry(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {_describe(exc)}") from exc
    if not data:
        return 0
    if not data.endswith(b"\n"):
        keep = data.rfind(b"\n") + 1
    else:
        keep = data.rfind(b"\n", 0, len(data) - 1) + 1
        if keep == 0:
            return 0  # header only
        header = schema.parse_line(data[:data.index(b"\n")].decode("utf-8", "replace"))
        last = schema.parse_line(data[keep:].decode("utf-8", "replace"))
        if header is not None and last is not None and len(last) == len(header):
            return 0
    cut = len(data) - keep
    try:
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise JournalError(f"cannot repair journal file {path}: {_describe(exc)}") from exc
    logger.warning(f"JOURNAL REPAIRED {path}: cut torn last line ({cut} bytes)")
    return cut


def _check_entry(path: Path) -> None:
    try:
        check_entry(path)
    except UnsafeFileError as exc:
        raise JournalError(f"journal file {exc.message}") from None
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {_describe(exc)}") from exc


def _header_fields(text: str) -> list[str] | None:
    return schema.parse_line(text.removeprefix("\ufeff"))


class Journal:
    """The four CSV families under one directory (SPEC "Journal")."""

    def __init__(
        self,
        directory: Path,
        *,
        flush_interval: float = 0.05,
        max_batch: int = 500,
        max_open_files: int = 8,
    ) -> None:
        self.directory = Path(directory)
        self.flush_interval = flush_interval
        self.max_batch = max_batch
        self.max_open_files = max_open_files
        self.error: str | None = None  # last background write error, None once writes succeed
        self._opened = False
        self._fill_ids: set[str] = set()
        self._order_keys: set[str] = set()
        self._close_ids: set[str] = set()
        self._bill_ids: set[str] = set()
        self._risk_keys: set[str] = set()
        self._last_fill: datetime | None = None
        self._pending: dict[Path, list[Row]] = {}
        self._paths: dict[tuple[str, object], Path] = {}  # (family, day) -> day file, per row
        self._pending_rows = 0
        self._recorded = 0  # rows accepted so far (sequence number)
        self._durable = 0  # rows known fsynced
        self._batch_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._handles: OrderedDict[Path, int] = OrderedDict()
        self._layouts: dict[Path, tuple[int, ...] | None] = {}  # per open handle; None = schema
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None

    # ---- opening -------------------------------------------------------------------------
    def open(self) -> None:
        """Repair torn tails and index every id already on disk, so restarts never duplicate."""
        if self._opened:
            return
        try:
            make_private_dir(self.directory)
        except UnsafeFileError as exc:
            raise JournalError(f"journal directory: {exc.message}") from None
        except OSError as exc:
            raise JournalError(
                f"cannot create journal directory {self.directory}: {_describe(exc)}"
            ) from exc
        for family, path in day_files(self.directory):
            repair_torn_tail(path)
            self._index_file(family, path)
        self._opened = True

    def _index_file(self, family: str, path: Path) -> None:
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise JournalError(f"cannot read journal file {path}: {_describe(exc)}") from exc
        lines = text.splitlines()
        if not lines:
            return
        header = schema.check_header(family, _header_fields(lines[0]), path)
        col = {name: i for i, name in enumerate(header)}
        for number, line in enumerate(lines[1:], start=2):
            fields = schema.parse_line(line)
            if fields is None or len(fields) != len(header):
                continue
            if family == schema.ORDERS:
                if fields[col["event"]] == FILL_EVENT:
                    self._fill_ids.add(fields[col["fill_id"]])
                    ts = fields[col["ts"]]
                    try:
                        self._note_fill_time(schema.parse_ts(ts))
                    except ValueError:
                        raise schema.row_error(path, number, "ts", ts,
                                               "an ISO-8601 time") from None
                else:
                    self._order_keys.add(
                        schema.order_key(fields[col["order_id"]], fields[col["event"]])
                    )
            elif family == schema.TRADES and "close_id" in col:
                self._close_ids.add(fields[col["close_id"]])
            elif family == schema.FUNDING:
                self._bill_ids.add(fields[col["bill_id"]])
            elif family == schema.RISK:
                self._risk_keys.add("|".join(fields[col[c]] for c in ("ts", "event", "rule")))

    def _note_fill_time(self, ts: datetime) -> None:
        if self._last_fill is None or ts > self._last_fill:
            self._last_fill = ts

    async def start(self) -> None:
        """Open, then run the group-commit task on the current loop."""
        self.open()
        if self._task is not None:
            return
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._wake = asyncio.Event()
        self._closing = False
        self._task = asyncio.create_task(self._run(), name="journal-group-commit")

    # ---- recording -----------------------------------------------------------------------
    def record_fill(self, fill: Fill) -> bool:
        """False: this fill_id is already journaled (or pending); nothing is written."""
        accepted = self._add(schema.fill_row(fill), self._fill_ids)
        if accepted:
            with self._batch_lock:
                self._note_fill_time(fill.ts)
        return accepted

    def record_order(self, update: OrderUpdate) -> bool:
        """One row per (order_id, state); a repeated push of the same state is refused."""
        return self._add(schema.order_row(update), self._order_keys)

    def record_close(self, close: CloseResult) -> bool:
        return self._add(schema.close_row(close), self._close_ids)

    def record_funding(self, payment: FundingPayment) -> bool:
        return self._add(schema.funding_row(payment), self._bill_ids)

    def record_risk(self, event: RiskEvent) -> bool:
        """One row per risk event (risk family); the same event recorded twice is refused."""
        return self._add(schema.risk_row(event), self._risk_keys)

    def record_position(self, snap: PositionSnapshot) -> None:
        self._add(schema.position_row(snap), None)

    def has_fill(self, fill_id: str) -> bool:
        return fill_id in self._fill_ids

    def has_bill(self, bill_id: str) -> bool:
        return bill_id in self._bill_ids

    def has_close(self, close_key: str) -> bool:
        return close_key in self._close_ids

    def last_fill_time(self) -> datetime | None:
        """Newest fill timestamp journaled (or pending): where a post-restart backfill starts."""
        return self._last_fill

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def _add(self, row: Row, index: set[str] | None) -> bool:
        if not self._opened:
            self.open()
        path = self._paths.get((row.family, row.day))
        if path is None:
            if len(self._paths) > 64:
                self._paths.clear()
            path = self._paths[(row.family, row.day)] = self.directory / schema.file_name(
                row.family, row.day)
        with self._batch_lock:
            if index is not None:
                if row.key in index:
                    return False
                index.add(row.key)
            self._pending.setdefault(path, []).append(row)
            self._pending_rows += 1
            self._recorded += 1
            full = self._pending_rows >= self.max_batch
        if full:
            self._kick()
        return True

    def _kick(self) -> None:
        if self._task is not None and not self._task.done():
            assert self._wake is not None and self._loop is not None
            if threading.get_ident() == self._loop_thread:
                self._wake.set()
            else:
                self._loop.call_soon_threadsafe(self._wake.set)
            return
        try:  # no commit task (sync use): keep memory bounded by committing inline
            self._commit()
        except JournalError as exc:
            self._set_error(str(exc))

    # ---- committing ----------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        # The flag, not only cancel(): Python 3.11's wait_for can swallow a cancellation that
        # lands as the wake event fires, and this loop would then never end (seen once: a
        # journal.close() in bench/stream.py hung with this task "cancelling" inside wait_for).
        while not self._closing:
            timeout = self.flush_interval if self.error is None else _ERROR_RETRY_S
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            if self._pending_rows:
                try:
                    await asyncio.to_thread(self._commit)
                except JournalError as exc:
                    self._set_error(str(exc))

    def _set_error(self, message: str | None) -> None:
        if message is not None and message != self.error:
            logger.error(f"JOURNAL ERROR {message}")
        self.error = message

    def _commit(self) -> None:
        """Write everything pending as whole lines, fsync each touched file once."""
        with self._io_lock:
            with self._batch_lock:
                batch, self._pending = self._pending, {}
                self._pending_rows = 0
                seq = self._recorded
            if batch:
                try:
                    self._write_batch(batch)
                except JournalError:
                    with self._batch_lock:  # put the rows back in front, ids stay reserved
                        for path, lines in self._pending.items():
                            batch.setdefault(path, []).extend(lines)
                        self._pending = batch
                        self._pending_rows = sum(len(v) for v in batch.values())
                    raise
            self._durable = max(self._durable, seq)
        if self.error is not None:
            logger.info(f"JOURNAL RECOVERED writing again ({sum(len(v) for v in batch.values())} "
                        "pending rows written)")
            self.error = None

    def _write_batch(self, batch: dict[Path, list[Row]]) -> None:
        written: list[tuple[int, int]] = []
        current = self.directory
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
                    data = schema.header_line(_family(path)).encode() + data
                written.append((fd, size))
                _write_all(fd, data)
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
                f"cannot write journal file {current}: {_describe(exc)}"
            ) from exc

    def _handle(self, path: Path) -> tuple[int, int]:
        """An append-mode fd for a day file (small LRU) and the file's size before this batch.

        A cached fd is reused only while the name still leads to the same file: a spreadsheet
        may save by writing a new file over the name, and rows appended to the replaced one would
        be lost (and its new header never checked).
        """
        fd = self._handles.get(path)
        if fd is not None:
            st = os.fstat(fd)
            try:
                now = os.lstat(path)
                same = (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev)
            except OSError:  # gone, or its folder is: reopening says why
                same = False
            if same:
                self._handles.move_to_end(path)
                # re-read the header each batch (one small pread): a file rewritten in place
                # with its columns moved keeps its inode and, column swaps, even its size
                self._layouts[path] = self._file_layout(path, fd) if st.st_size else None
                return fd, st.st_size
            del self._handles[path]
            self._layouts.pop(path, None)
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
        self._handles[path] = fd
        self._layouts[path] = order
        if created:  # make the new directory entry durable too
            dfd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(dfd)
            finally:
                os.close(dfd)
        while len(self._handles) > self.max_open_files:
            old_path, old = self._handles.popitem(last=False)
            self._layouts.pop(old_path, None)
            with contextlib.suppress(OSError):
                os.close(old)
        return fd, size

    @staticmethod
    def _file_layout(path: Path, fd: int) -> tuple[int, ...] | None:
        """Check the header of the non-empty file open at ``fd``; its column order for appends."""
        head = os.pread(fd, _HEADER_MAX, 0)  # page cache: a couple of microseconds
        end = head.find(b"\n")
        fields = _header_fields(head[:end].decode("utf-8", "replace")) if end >= 0 else None
        family = _family(path)
        return schema.layout(schema.check_header(family, fields, path), family)

    async def flush(self) -> None:
        """Return once every row recorded before this call is fsynced; JournalError if it cannot be."""
        target = self._recorded
        while self._durable < target:
            await asyncio.to_thread(self._commit)

    def flush_sync(self) -> None:
        """Blocking flush for shutdown paths and callers without an event loop."""
        if self._opened:
            self._commit()

    async def close(self) -> None:
        if self._task is not None:
            self._closing = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await asyncio.to_thread(self.flush_sync)
        except JournalError as exc:
            raise self._unwritten(exc) from exc
        finally:
            self._close_handles()

    def close_sync(self) -> None:
        """Flush and release files without a loop (the commit task, if any, must be stopped)."""
        try:
            self.flush_sync()
        except JournalError as exc:
            raise self._unwritten(exc) from exc
        finally:
            self._close_handles()

    def _unwritten(self, exc: JournalError) -> JournalError:
        """The one line a front end prints when rows are still unwritten as the journal closes."""
        self._set_error(exc.message)
        return JournalError(f"{exc.message}; {self._pending_rows} journal rows not written at stop")

    def _close_handles(self) -> None:
        with self._io_lock:
            self._layouts.clear()
            while self._handles:
                _, fd = self._handles.popitem()
                with contextlib.suppress(OSError):
                    os.close(fd)


def _family(path: Path) -> str:
    return path.name.rsplit("_", 1)[0]
