"""The journal writer: group commit to CSV day files, idempotent across restarts.

Why group commit: one fsync per fill would cap us at a few hundred fills a second on a laptop disk
and stall the UI loop; batching rows and fsyncing each touched file once per batch keeps the
durability promise ("flush() returned, so it is on disk") at a tiny fraction of the cost.

Why ids are reserved at record time rather than at write time: the venue stream and the REST
backfill can deliver the same fill twice within one batch window, and both copies would otherwise
slip past a check that only looks at what is already on disk.

Files: created 0600 in a 0700 folder whatever the umask, never through a symlink nor into a file
owned by another user (core.support.safefile). Each file's header is checked when it is opened: the same
columns in another order (a spreadsheet moved them) is that file's layout, and rows are appended
in it; missing or unknown columns refuse with the file and the columns named.

Ids: which ids are journaled is answered by the SQLite index beside the files (core.journal.index)
plus the ids of rows not yet indexed and a bounded set of recent ones, so opening a journal of any
age reads no day file whole and holds no history in memory. A batch is indexed after it is fsynced
(the index reads the bytes the CSV files hold), so the CSV files stay the record.

Concurrency: record_* runs on the event loop thread; the batch is written in a worker thread so an
fsync never freezes the console. ``_io_lock`` serialises writers (and keeps batches in order),
``_batch_lock`` guards the in-memory batch and the id indexes.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

from loguru import logger

from core.events import RiskEvent
from core.ids import utc_from_ms
from core.journal import schema
from core.journal.dayfiles import HEADER_MAX, Appended, DayFiles, describe, family_of
from core.journal.disk import disk_full, full_disk_message
from core.journal.errors import JournalError
from core.journal.index import INDEX_NAME, SqliteJournalIndex
from core.journal.reader import read_rows
from core.journal.replay import ReplayRows, replay_rows
from core.journal.schema import FILL_EVENT, Row, day_files
from core.model import CloseResult, Fill, FundingPayment, OrderUpdate, PositionSnapshot
from core.support.safefile import UnsafeFileError, check_entry, make_private_dir

__all__ = ["Journal", "JournalError", "repair_torn_tail"]

_ERROR_RETRY_S = 1.0
_TAIL_MAX = 1 << 16  # bytes read to judge a file's last line (a valid row is ~300)
RECENT_IDS = 50_000  # ids kept in memory per kind once indexed (an LRU); the rest: the index



def repair_torn_tail(path: Path) -> int:
    """Cut a torn last line left by a crash; returns the number of bytes cut (0 if intact).

    Torn means: the file does not end in a newline, or its last line is not one CSV record with
    the header's column count. Only the last line is judged: rows are written as whole lines, so a
    crash can only damage the tail.
    """
    _check_entry(path)
    try:
        with open(path, "rb") as f:  # the head and the tail only: a day file may be large
            size = os.fstat(f.fileno()).st_size
            head = f.read(min(size, HEADER_MAX))
            base = max(0, size - _TAIL_MAX)
            f.seek(base)
            data = f.read()
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {describe(exc)}") from exc
    if not data:
        return 0
    if not data.endswith(b"\n"):
        nl = data.rfind(b"\n")
        keep = base + nl + 1 if nl >= 0 or base == 0 else base
    else:
        nl = data.rfind(b"\n", 0, len(data) - 1)
        if nl < 0 and base == 0:
            return 0  # header only
        keep = base + nl + 1
        end = head.find(b"\n")
        header = schema.parse_line(head[:end].decode("utf-8", "replace")) if end >= 0 else None
        last = schema.parse_line(data[nl + 1:].decode("utf-8", "replace"))
        if header is not None and last is not None and len(last) == len(header):
            return 0
    cut = size - keep
    try:
        with open(path, "r+b") as f:
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise JournalError(f"cannot repair journal file {path}: {describe(exc)}") from exc
    logger.warning(f"JOURNAL REPAIRED {path}: cut torn last line ({cut} bytes)")
    return cut


def _check_entry(path: Path) -> None:
    try:
        check_entry(path)
    except UnsafeFileError as exc:
        raise JournalError(f"journal file {exc.message}") from None
    except OSError as exc:
        raise JournalError(f"cannot read journal file {path}: {describe(exc)}") from exc


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
        self.index: SqliteJournalIndex | None = None
        # ids recorded but not indexed yet, and a bounded set of recent indexed ones, per kind
        self._pending_ids: dict[str, set[str]] = {k: set() for k in _KINDS}
        self._recent: dict[str, OrderedDict[str, None]] = {k: OrderedDict() for k in _KINDS}
        self._unindexed: set[str] = set()  # file names whose last batch the index missed
        self._newest_ms: dict[str, int] = {k: 1 << 62 for k in _KINDS}  # newest indexed time
        self._risk_keys: set[str] = set()
        self._risk_days: set[date] = set()  # risk day files whose keys are in _risk_keys
        self._last_fill: datetime | None = None
        self._pending: dict[Path, list[Row]] = {}
        self._paths: dict[tuple[str, object], Path] = {}  # (family, day) -> day file, per row
        self._pending_rows = 0
        self._recorded = 0  # rows accepted so far (sequence number)
        self._durable = 0  # rows known fsynced
        self._batch_lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._files = DayFiles(self.directory, max_open_files)  # the open day files (an LRU)
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread: int | None = None
        # bytes of each day file known to be on disk (at open, then after each fsync), and who
        # to tell after a batch is fsynced: what a copy of the journal (core/store) may read
        self._durable_sizes: dict[str, int] = {}
        self.on_durable: Callable[[], None] | None = None

    # ---- opening -------------------------------------------------------------------------
    def open(self) -> None:
        """Repair torn tails and bring the index up to date, so restarts never duplicate.

        Only the bytes the index has not seen are read (all of them when the index is missing).
        """
        if self._opened:
            return
        try:
            make_private_dir(self.directory)
        except UnsafeFileError as exc:
            raise JournalError(f"journal directory: {exc.message}") from None
        except OSError as exc:
            raise JournalError(
                f"cannot create journal directory {self.directory}: {describe(exc)}"
            ) from exc
        try:
            files, rows = self._catch_up()
        except (sqlite3.Error, OSError, JournalError) as exc:
            failed = self._open_failed(exc)
            if failed is exc:
                raise
            raise failed from exc
        assert self.index is not None
        if self.index.rebuilt is not None and files:
            logger.warning(f"JOURNAL INDEX {self.index.path} was {self.index.rebuilt}: rebuilt from "
                           f"the CSV files ({len(files)} day files, {rows} rows)")
            self.index.rebuilt = None  # said once
        sizes = {}
        for _family_name, path in day_files(self.directory):
            with contextlib.suppress(OSError):
                sizes[path.name] = path.stat().st_size
        with self._batch_lock:
            self._durable_sizes = sizes
        newest = self.index.newest_ms()
        with self._batch_lock:
            self._newest_ms = {k: newest.get(k, -1) for k in _KINDS}
        last = self.index.last_fill_ms()
        if last is not None:
            self._note_fill_time(utc_from_ms(last))
        self._opened = True

    def _catch_up(self) -> tuple[list[tuple[str, Path]], int]:
        """Open the index, repair torn tails, index what it has not seen: (day files, rows)."""
        if self.index is None:
            self.index = SqliteJournalIndex(self.directory)
        files = day_files(self.directory)
        for _family_name, path in files:
            if not self.index.settled(path):  # indexed to its end and unchanged: whole lines
                repair_torn_tail(path)
        return files, self.index.catch_up()

    def _open_failed(self, exc: BaseException) -> JournalError:
        """One plain error for a start that could not open the journal: the full disk named
        (SQLite's own words, "database or disk is full" or even "cannot rollback", name no folder)."""
        if self.index is not None:
            with contextlib.suppress(sqlite3.Error):
                self.index.close()
            self.index = None
        if disk_full(self.directory, exc):
            return JournalError(full_disk_message(self.directory))
        if isinstance(exc, JournalError):
            return exc
        detail = describe(exc) if isinstance(exc, OSError) else str(exc)
        return JournalError(f"journal index {self.directory / INDEX_NAME} cannot be used ({detail}); "
                            "deleting it is safe: it is rebuilt from the CSV files")

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
        return self.add_fill(fill) is not None

    def add_fill(self, fill: Fill, *, asked: bool = False) -> Row | None:
        """``record_fill`` handing back the row it queued (None: already journaled or pending),
        so the FILL line reuses the row's texts instead of turning the Decimals to text again.

        ``asked``: the caller asked ``has_fill`` for this fill on this thread just before (no
        await between), so the look-up is not repeated; the id is still reserved under the lock,
        which refuses a copy another thread queued meanwhile.
        """
        row = schema.fill_row(fill)
        if not self._add(row, "fill", asked):
            return None
        with self._batch_lock:
            self._note_fill_time(fill.ts)
        return row

    def record_order(self, update: OrderUpdate) -> bool:
        """One row per (order_id, state); a repeated push of the same state is refused."""
        return self._add(schema.order_row(update), "order")

    def record_close(self, close: CloseResult) -> bool:
        return self.add_close(close) is not None

    def add_close(self, close: CloseResult) -> Row | None:
        """``record_close`` handing back the row it queued (None: this close is journaled)."""
        row = schema.close_row(close)
        return row if self._add(row, "close") else None

    def record_funding(self, payment: FundingPayment) -> bool:
        return self._add(schema.funding_row(payment), "bill")

    def record_risk(self, event: RiskEvent) -> bool:
        """One row per risk event (risk family); the same event recorded twice in a run is refused.

        Risk events are made live, never replayed from the exchange: the keys (ts + event + rule,
        the time unique per event) of the event's own day file are all the idempotency they need."""
        row = schema.risk_row(event)
        if row.day not in self._risk_days:  # the event's own day file only: a bounded read
            self._risk_days.add(row.day)
            for old in read_rows(self.directory, schema.RISK, row.day):
                self._risk_keys.add(f"{old['ts']}|{old['event']}|{old['rule']}")
        if row.key in self._risk_keys:
            return False
        self._risk_keys.add(row.key)
        return self._add(row, None)

    def record_position(self, snap: PositionSnapshot) -> None:
        self._add(schema.position_row(snap), None)

    def has_fill(self, fill_id: str, ts: datetime | None = None) -> bool:
        """Is this fill journaled (or pending)? ``ts``, the fill's time, spares an index look-up
        for a fill newer than every indexed one (a live fill, nearly always)."""
        return self._known("fill", fill_id, ts)

    def has_bill(self, bill_id: str, ts: datetime | None = None) -> bool:
        return self._known("bill", bill_id, ts)

    def has_close(self, close_key: str, ts: datetime | None = None) -> bool:
        return self._known("close", close_key, ts)

    def _known(self, kind: str, key: str, ts: datetime | None = None) -> bool:
        """Journaled or pending: the pending ids, the recent ones, then the index.

        A row's id is indexed with the row's own time, so an id whose time is later than the
        newest indexed time of its kind cannot be in the index (a margin of 2 ms covers the
        rounding of times to the journal's milliseconds).
        """
        if not self._opened:
            self.open()
        with self._batch_lock:
            if key in self._pending_ids[kind] or key in self._recent[kind]:
                return True
            newest = self._newest_ms[kind]
        if ts is not None and int(ts.timestamp() * 1000) > newest + 2:
            return False
        assert self.index is not None
        if self.index.has(kind, key):
            self._remember(kind, [key])
            return True
        return False

    def _remember(self, kind: str, keys: list[str]) -> None:
        with self._batch_lock:
            recent = self._recent[kind]
            for key in keys:
                recent[key] = None
                recent.move_to_end(key)
            while len(recent) > RECENT_IDS:
                recent.popitem(last=False)

    def replay_rows(self) -> ReplayRows:
        """The rows a restart replays: the lives open at the last stop (core.journal.replay)."""
        if not self._opened:
            self.open()
        assert self.index is not None
        return replay_rows(self.directory, self.index)

    def last_fill_time(self) -> datetime | None:
        """Newest fill timestamp journaled (or pending): where a post-restart backfill starts."""
        return self._last_fill

    def durable_sizes(self) -> dict[str, int]:
        """{day file name: bytes known fsynced}; rows past these sizes may not be on disk yet."""
        with self._batch_lock:
            return dict(self._durable_sizes)

    @property
    def pending_rows(self) -> int:
        return self._pending_rows

    def _add(self, row: Row, kind: str | None, asked: bool = False) -> bool:
        if not self._opened:
            self.open()
        if kind is not None and not asked and self._known(kind, row.key, row.ts):
            return False
        path = self._paths.get((row.family, row.day))
        if path is None:
            if len(self._paths) > 64:
                self._paths.clear()
            path = self._paths[(row.family, row.day)] = self.directory / schema.file_name(
                row.family, row.day)
        with self._batch_lock:
            if kind is not None:
                pending = self._pending_ids[kind]
                if row.key in pending:  # reserved meanwhile by another thread
                    return False
                pending.add(row.key)
            self._pending.setdefault(path, []).append(row)
            first = not self._pending_rows
            self._pending_rows += 1
            self._recorded += 1
            full = self._pending_rows >= self.max_batch
        if full:
            self._kick()
        elif first:
            self._arrived()
        return True

    def _arrived(self) -> None:
        """The first row of a batch: the commit task, asleep while nothing is pending, starts
        the group's ``flush_interval`` now (without a task, rows wait for a flush or a full batch)."""
        self._wake_task()

    def _kick(self) -> None:
        """A full batch: the commit task writes it now; without one (sync use) it is committed
        inline, so memory stays bounded."""
        if self._wake_task():
            return
        try:
            self._commit()
        except JournalError as exc:
            self._set_error(str(exc))

    def _wake_task(self) -> bool:
        """Wake the commit task from any thread; False when there is none. From another thread
        after the engine's loop closed the wake cannot be delivered: the rows stay pending and a
        flush or the close writes them (the recording thread gets no error)."""
        if self._task is None or self._task.done():
            return False
        assert self._wake is not None and self._loop is not None
        if threading.get_ident() == self._loop_thread:
            self._wake.set()
        else:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake.set)
        return True

    # ---- committing ----------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        # The flag, not only cancel(): Python 3.11's wait_for can swallow a cancellation that
        # lands as the wake event fires, and this loop would then never end (seen once: a
        # journal.close() in bench/stream.py hung with this task "cancelling" inside wait_for).
        # Nothing pending and no error: sleep until a row arrives (``_arrived``), with no timer.
        # A poll every ``flush_interval`` woke the loop 20 times a second for nothing, most of the
        # time (issue 25). Then the group waits ``flush_interval`` (or a full batch's kick).
        # call_later rather than wait_for: no task per group, and no cancellation swallowed.
        loop = asyncio.get_running_loop()
        while not self._closing:
            if self.error is None and not self._pending_rows:
                self._wake.clear()
                if not self._pending_rows:  # a row may have come from another thread meanwhile
                    await self._wake.wait()
                if self._closing:
                    break
            timeout = self.flush_interval if self.error is None else _ERROR_RETRY_S
            self._wake.clear()
            if self._pending_rows < self.max_batch:
                timer = loop.call_later(timeout, self._wake.set)
                try:
                    await self._wake.wait()
                finally:
                    timer.cancel()
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
            written: list[Appended] = []
            if batch:
                try:
                    written = self._files.write_batch(batch)
                except JournalError:
                    with self._batch_lock:  # put the rows back in front, ids stay reserved
                        for path, lines in self._pending.items():
                            batch.setdefault(path, []).extend(lines)
                        self._pending = batch
                        self._pending_rows = sum(len(v) for v in batch.values())
                    raise
            self._durable = max(self._durable, seq)
            if batch:
                with self._batch_lock:
                    for a in written:
                        self._durable_sizes[a.path.name] = a.size + len(a.data)
                self._index_batch(batch, written)
        if batch and self.on_durable is not None:
            self.on_durable()
        if self.error is not None:
            logger.info(f"JOURNAL RECOVERED writing again ({sum(len(v) for v in batch.values())} "
                        "pending rows written)")
            self.error = None

    def _index_batch(self, batch: dict[Path, list[Row]], written: list[Appended]) -> None:
        """Index what was just fsynced, then let its ids go from the pending sets.

        ``written``: what this batch appended to each file, indexed from memory; a file the index was not exactly caught up with is read from disk instead.
        An index that cannot be written (disk full, a damaged file) costs memory, not money: the
        ids stay pending (answered from memory) and the next batch or open catches the index up.
        """
        missed_before = bool(self._unindexed)
        try:
            self._index_files(written)
        except Exception as exc:  # noqa: BLE001 - the CSV is written; only the index lags
            logger.warning(f"journal index not updated ({exc}); ids kept in memory until it is")
            self._unindexed = {path.name for path in batch} | self._unindexed
            return
        self._unindexed = set()
        done: dict[str, list[str]] = {k: [] for k in _KINDS}
        newest: dict[str, int] = {}
        for rows in batch.values():
            for row in rows:
                kind = _kind(row)
                if kind is not None:
                    done[kind].append(row.key)
                    ms = int(row.ts.timestamp() * 1000)
                    if ms > newest.get(kind, -1):
                        newest[kind] = ms
        with self._batch_lock:
            for kind, ms in newest.items():
                self._newest_ms[kind] = max(self._newest_ms[kind], ms)
        for kind, keys in done.items():
            if keys:
                self._remember(kind, keys)
                with self._batch_lock:
                    self._pending_ids[kind].difference_update(keys)
        if not missed_before:
            return
        with self._batch_lock:  # ids whose batch the index missed earlier are indexed now too
            waiting = {(_kind(r), r.key) for rows in self._pending.values() for r in rows}
            for kind in _KINDS:
                stale = [k for k in self._pending_ids[kind] if (kind, k) not in waiting]
                self._pending_ids[kind].difference_update(stale)
                recent = self._recent[kind]
                for key in stale:
                    recent[key] = None

    def _index_files(self, written: list[Appended]) -> None:
        assert self.index is not None
        names = set(self._unindexed)
        for a in written:
            if names or not self.index.appended(family_of(a.path), a.path, a.size, a.data, a.header, a.tail):
                names.add(a.path.name)  # after a miss, the files are caught up from disk in order
        if names:
            self.index.catch_up(sorted(names))

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
            self._files.close_all()


_KINDS = ("fill", "order", "close", "bill")


def _kind(row: Row) -> str | None:
    """Which id set a row's key belongs to (None: positions rows carry no id)."""
    if row.family == schema.ORDERS:
        return "fill" if row.values[1] == FILL_EVENT else "order"
    if row.family == schema.TRADES:
        return "close"
    if row.family == schema.FUNDING:
        return "bill"
    return None
