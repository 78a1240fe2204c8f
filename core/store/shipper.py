"""Ships the journal's rows to PostgreSQL after they are on disk, in the background.

Why it tails the day files rather than taking rows from the writer: the CSV files are the record,
and reading them back from a byte mark makes a restart, a crash or an outage of any length the same
case: whatever lies between the mark and what the journal has fsynced is shipped, in file order.
Only bytes the journal reports fsynced (``Journal.durable_sizes``) are read, so PostgreSQL never
holds a row the disk could still lose.

Each cycle: read whole lines after the mark (a worker thread), COPY them into per-session staging
tables, ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` into the real ones, commit, then move the
mark (core.store.marks). Trading never waits on this: the journal only calls ``wake``; while
PostgreSQL is unreachable the shipper retries every few seconds and reports how far behind it is
(rows and seconds) through ``state``.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from core.journal import schema
from core.journal.errors import JournalError
from core.store.connect import SCHEMA, connect, describe
from core.store.errors import StoreError
from core.store.marks import Marks, load_marks, save_marks
from core.store.migrations import staging_ddl
from core.store.rows import SCOPE_COLUMNS, BadRow, Scope, record, table_columns

CHUNK_BYTES = 1 << 20  # bytes read from one file per cycle
MAX_ROWS = 5_000  # rows per transaction (the COPY encoding runs on the event loop)
RETRY_S = (0.5, 1.0, 2.0, 3.0)  # waits between reconnect attempts, the last one repeated
SEND_TIMEOUT_S = 30.0  # a server that stops answering mid-transaction (a dead link) is given up


class DurableJournal(Protocol):
    """What the shipper needs from core.journal.Journal."""

    directory: Path

    def durable_sizes(self) -> dict[str, int]: ...


@dataclass(frozen=True, slots=True)
class StoreState:
    """How far the store is behind the journal: shown in the header and the status row."""

    connected: bool
    rows_behind: int
    seconds_behind: float  # float ok: a duration, not money
    shipped: int  # rows sent this run (each lands once; a repeat is ignored by the server)
    error: str = ""


@dataclass
class _FileCursor:
    """One day file as the shipper sees it: where the mark is, and the lines counted after it."""

    inode: int
    mark: int
    counted_to: int  # bytes after ``mark`` whose newlines are in ``pending``
    pending: int  # complete lines in [mark, counted_to)
    header: tuple[str, ...] | None = None


@dataclass
class _Chunk:
    name: str
    family: str
    new_mark: int
    lines: int
    records: list[tuple[object, ...]]


class Shipper:
    """One engine's journal -> one PostgreSQL, from a high-water mark, in the background."""

    def __init__(self, journal: DurableJournal, url: str, scope: Scope, *,
                 max_rows: int = MAX_ROWS, idle_s: float = 1.0) -> None:
        self.journal = journal
        self.directory = Path(journal.directory)
        self.url = url
        self.scope = scope
        self.max_rows = max_rows
        self.idle_s = idle_s
        self.target = f"{_target(url)}|{scope.engine}"
        # what pg_stat_activity shows for this shipper's connection (PostgreSQL keeps 63 bytes)
        self.application_name = f"perpdesk shipper {scope.engine}"
        self._marks: Marks | None = None
        self._cursors: dict[str, _FileCursor] = {}
        self._conn: Any = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closing = False
        self._turn = asyncio.Lock()  # one cycle at a time on the one connection (loop and stop)
        self._behind_since: float | None = None
        self._rows_behind = 0
        self._shipped = 0
        self._skipped = 0
        self._unreadable: set[str] = set()  # day files whose header cannot be read (said once)
        self._error = ""
        self.cycles = 0

    # ---- life ----------------------------------------------------------------------------
    async def start(self) -> None:
        """Start shipping in the background; never waits on PostgreSQL, never fails the start.

        A mark file that cannot be read (a directory or a link in its place, another owner) is
        the store's problem, not trading's: it is said like an outage and retried each cycle."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        with contextlib.suppress(StoreError):  # said by the first cycle, which tries again
            await self._load_marks()
        self._task = asyncio.create_task(self._run(), name="store-shipper")

    async def _load_marks(self) -> Marks:
        if self._marks is None:
            self._marks = await asyncio.to_thread(load_marks, self.directory, self.target)
        return self._marks

    def wake(self) -> None:
        """A batch is on disk (called from the journal's commit thread): ship it soon."""
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(wake.set)

    async def stop(self, drain_s: float = 2.0) -> None:
        """Ship what is on disk for up to ``drain_s`` seconds, then stop (the rest goes next run)."""
        if self._task is None:
            return
        if self._conn is not None and drain_s > 0:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._drain(), drain_s)
        self._closing = True
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        self._task = None
        await self._drop()

    async def _drain(self) -> None:
        while await self.ship_once():
            pass

    @property
    def state(self) -> StoreState:
        behind = 0.0 if self._behind_since is None else time.monotonic() - self._behind_since
        return StoreState(self._conn is not None and not self._error, self._rows_behind, behind,
                          self._shipped, self._error)

    # ---- the loop ------------------------------------------------------------------------
    async def _run(self) -> None:
        assert self._wake is not None
        failures = 0
        while not self._closing:
            try:
                more = await self.ship_once()
                failures = 0
                if more:
                    continue
                wait = self.idle_s
            except StoreError as exc:
                self._fail(exc.message)
                failures += 1
                wait = RETRY_S[min(failures, len(RETRY_S)) - 1]
            except Exception as exc:  # noqa: BLE001 - the server, the network: retry, never stop
                self._fail(describe(exc))
                await self._drop()
                failures += 1
                wait = RETRY_S[min(failures, len(RETRY_S)) - 1]
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
            self._wake.clear()

    def _fail(self, message: str) -> None:
        if message != self._error:
            logger.warning(f"STORE behind: {message}; the journal goes on, the rows are shipped "
                           "once this is solved (tried again every few seconds)")
        self._error = message

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), 2.0)

    async def _connection(self) -> Any:
        if self._conn is None or self._conn.is_closed():
            self._conn = None
            conn = await connect(self.url, what=f"store for engine {self.scope.engine}",
                                 application_name=self.application_name)
            try:
                await self._claim(conn)
                for family in schema.FAMILIES:
                    await conn.execute(staging_ddl(family))
            except BaseException:
                with contextlib.suppress(Exception):
                    await conn.close()
                raise
            self._conn = conn
            if self._error:
                logger.info(f"STORE reconnected: shipping the {self._rows_behind} rows behind")
        return self._conn

    async def _claim(self, conn: Any) -> None:
        """This engine's name for this account in the store (refused if another account has it)."""
        import asyncpg

        s = self.scope
        try:
            await conn.execute(f"SELECT {SCHEMA}.claim_engine($1, $2, $3, $4)",
                               s.engine, s.venue, s.mode, s.account, timeout=SEND_TIMEOUT_S)
        except asyncpg.UniqueViolationError as exc:
            raise StoreError(describe(exc)) from None
        except (asyncpg.UndefinedFunctionError, asyncpg.InvalidSchemaNameError,
                asyncpg.UndefinedTableError):
            raise StoreError("the store's schema is missing or older than this perpdesk: run "
                             "`perpdesk store init` on it") from None
        except asyncpg.InsufficientPrivilegeError as exc:
            raise StoreError(f"{describe(exc)}: [store] url must be the insert-only role "
                             "`perpdesk store init` created") from None

    async def ship_once(self) -> bool:
        """One cycle: count what is behind, ship up to ``max_rows`` of it. True = more is waiting.

        Cycles take turns (the background loop, a drain at stop): a second one sharing the
        connection inside the first one's transaction would fail both."""
        async with self._turn:
            return await self._ship_once()

    async def _ship_once(self) -> bool:
        await self._load_marks()
        sizes = self.journal.durable_sizes()
        chunks, more = await asyncio.to_thread(self._read, sizes)
        self._note_behind()
        if not chunks:
            if self._conn is None:  # nothing to ship: still say whether the store is reachable
                await self._connection()
            self._error = ""
            return False
        conn = await self._connection()
        by_table: dict[str, list[tuple[object, ...]]] = defaultdict(list)
        for chunk in chunks:
            by_table[chunk.family].extend(chunk.records)
        try:
            await self._send_timed(conn, by_table)
        except Exception as exc:
            if not _refused(exc):
                raise
            await self._ship_without_refused(conn, by_table, exc)
        assert self._marks is not None
        for chunk in chunks:
            cur = self._cursors[chunk.name]
            cur.mark = chunk.new_mark
            cur.pending = max(0, cur.pending - chunk.lines)
            self._marks.files[chunk.name] = (cur.inode, cur.mark)
        await asyncio.to_thread(save_marks, self.directory, self._marks)
        self._shipped += sum(len(c.records) for c in chunks)
        self._error = ""
        self.cycles += 1
        self._note_behind()
        return more

    async def _send_timed(self, conn: Any, by_table: dict[str, list[tuple[object, ...]]]) -> None:
        try:
            await asyncio.wait_for(self._send(conn, by_table), SEND_TIMEOUT_S)
        except TimeoutError:
            self._conn = None
            conn.terminate()
            raise StoreError(f"PostgreSQL did not answer within {SEND_TIMEOUT_S:g} s") from None

    async def _ship_without_refused(self, conn: Any, by_table: dict[str, list[tuple[object, ...]]],
                                    exc: BaseException) -> None:
        """A hand edit PostgreSQL cannot store must not hold back every row after it, at every
        retry, forever: the rows it refuses are found and skipped with a warning (the journal
        keeps them). If it refuses every row, the fault is the store's (a schema of another
        version?), not a row's: nothing is skipped and the cycle fails."""
        total = sum(len(r) for r in by_table.values())
        refused: list[str] = []
        for family, records in by_table.items():
            await self._sift(conn, family, records, refused)
        if len(refused) == total and total > 1:
            raise StoreError(f"PostgreSQL refuses every row ({describe(exc)})")
        for line in refused:
            self._skipped += 1
            logger.warning(f"STORE skipped {line} (PostgreSQL refused it)")

    async def _sift(self, conn: Any, family: str, records: list[tuple[object, ...]],
                    refused: list[str]) -> None:
        """Ship ``records`` in halves until the rows PostgreSQL refuses stand alone; those go to
        ``refused`` (as "family row_key: why") and are not shipped."""
        try:
            await self._send_timed(conn, {family: records})
        except Exception as exc:
            if not _refused(exc):
                raise
            if len(records) == 1:
                refused.append(f"{family} row {records[0][len(SCOPE_COLUMNS) - 1]}: {describe(exc)}")
                return
            half = len(records) // 2
            await self._sift(conn, family, records[:half], refused)
            await self._sift(conn, family, records[half:], refused)

    @staticmethod
    async def _send(conn: Any, by_table: dict[str, list[tuple[object, ...]]]) -> None:
        """One transaction: COPY into the staging tables, insert-or-ignore into the real ones
        (``ON CONFLICT DO NOTHING`` without a target: the insert-only role may not read the key)."""
        async with conn.transaction():
            for family, records in by_table.items():
                await conn.copy_records_to_table(f"stage_{family}", records=records,
                                                 columns=table_columns(family))
                cols = ", ".join(f'"{c}"' for c in table_columns(family))
                await conn.execute(f"INSERT INTO {SCHEMA}.{family} ({cols}) SELECT {cols} "
                                   f"FROM stage_{family} ON CONFLICT DO NOTHING")

    def _note_behind(self) -> None:
        self._rows_behind = sum(c.pending for c in self._cursors.values())
        if self._rows_behind == 0:
            self._behind_since = None
        elif self._behind_since is None:
            self._behind_since = time.monotonic()

    # ---- reading (worker thread) ---------------------------------------------------------
    def _read(self, sizes: dict[str, int]) -> tuple[list[_Chunk], bool]:
        """Count the lines behind in every file, and read up to ``max_rows`` of them."""
        assert self._marks is not None
        chunks: list[_Chunk] = []
        rows = 0
        more = False
        for name in sorted(sizes, key=_file_order):
            size = sizes[name]
            path = self.directory / name
            try:
                with open(path, "rb") as f:
                    cur = self._cursor(name, os.fstat(f.fileno()).st_ino, size)
                    self._count(f, cur, size)
                    if cur.mark >= size or rows >= self.max_rows:
                        more = more or cur.mark < size
                        continue
                    chunk = self._chunk(f, name, cur, size, self.max_rows - rows)
            except OSError as exc:
                logger.debug(f"store: {name} not read ({exc})")
                continue
            except JournalError as exc:  # a header a hand edit broke: this file waits, not all
                if name not in self._unreadable:
                    self._unreadable.add(name)
                    logger.warning(f"STORE cannot ship {name}: {exc.message}; its rows wait "
                                   "(counted as behind), the other files ship")
                continue
            self._unreadable.discard(name)
            if chunk is not None:
                chunks.append(chunk)
                rows += len(chunk.records)
                more = more or chunk.new_mark < size
        return chunks, more

    def _cursor(self, name: str, inode: int, size: int) -> _FileCursor:
        assert self._marks is not None
        cur = self._cursors.get(name)
        if cur is None or cur.inode != inode or cur.mark > size:
            mark = self._marks.offset(name, inode, size)
            cur = self._cursors[name] = _FileCursor(inode, mark, mark, 0)
        return cur

    @staticmethod
    def _count(f: Any, cur: _FileCursor, size: int) -> None:
        """Add the complete lines in [counted_to, size) to ``pending`` (the header is no row),
        reading in blocks: a journal shipped for the first time may hold a year of rows."""
        start = cur.counted_to
        if size <= start:
            return
        f.seek(start)
        lines = 0
        last_nl = -1  # offset of the last newline seen
        pos = start
        while pos < size:
            block = f.read(min(CHUNK_BYTES * 4, size - pos))
            if not block:
                break
            n = block.count(b"\n")
            if n:
                lines += n
                last_nl = pos + block.rfind(b"\n")
            pos += len(block)
        if last_nl < 0:
            return
        if start == 0:
            lines -= 1  # the header line
        cur.pending += lines
        cur.counted_to = last_nl + 1

    def _chunk(self, f: Any, name: str, cur: _FileCursor, size: int, room: int) -> _Chunk | None:
        """Up to ``room`` rows after the mark, whole lines only; a line that does not read is
        skipped with a warning (shipping must not stall on a hand edit)."""
        family = name.rsplit("_", 1)[0]
        offset = cur.mark
        f.seek(offset)
        data = f.read(min(size - offset, CHUNK_BYTES))
        end = data.rfind(b"\n") + 1
        if end == 0:
            return None
        lines = data[:end].split(b"\n")[:-1]
        if offset == 0 or cur.header is None:
            cur.header = self._header(f, lines[0] if offset == 0 else None, name)
        records: list[tuple[object, ...]] = []
        consumed = 0
        counted = 0
        for i, raw in enumerate(lines):
            if counted >= room:
                break
            consumed += len(raw) + 1
            if offset == 0 and i == 0:
                continue  # the header
            counted += 1
            fields = schema.parse_line(raw.decode("utf-8", "replace"))
            try:
                if fields is None:
                    raise BadRow("not one CSV record")
                assert cur.header is not None
                records.append(record(family, cur.header, fields, self.scope))
            except BadRow as exc:
                self._skipped += 1
                logger.warning(f"STORE skipped {name} at byte {offset + consumed - len(raw) - 1}: {exc}")
        return _Chunk(name, family, offset + consumed, counted, records)

    @staticmethod
    def _header(f: Any, first: bytes | None, name: str) -> tuple[str, ...]:
        if first is None:
            f.seek(0)
            first = f.readline(4096).rstrip(b"\n")
        fields = schema.parse_line(first.decode("utf-8", "replace").removeprefix("\ufeff"))
        family = name.rsplit("_", 1)[0]
        return schema.check_header(family, fields, Path(name))


def _refused(exc: BaseException) -> bool:
    """A row PostgreSQL (or the driver encoding it) will refuse at every try: not an outage."""
    import asyncpg

    return isinstance(exc, asyncpg.DataError | ValueError | OverflowError)


def _file_order(name: str) -> tuple[str, str]:
    """Day files oldest day first, then family: a restart ships history in time order."""
    family, _, day = name.rpartition("_")
    return day, family


def _target(url: str) -> str:
    """The database a URL reaches, without user or password: the marks' ``target``."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.hostname or ''}:{parts.port or ''}/{parts.path.lstrip('/')}?{parts.query}"
