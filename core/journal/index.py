"""An embedded SQLite index beside the CSV day files: ids, per-file progress and per-day totals.

Why: a trader's journal only grows. Reading every day file at each start (to learn which ids are
already journaled) and for every report made start-up time and memory grow with the history (a
year of a busy scalper: 28 s and 1.5 GB). The index answers "is this id journaled?", "where does
each open life start?" and "what are the day's totals?" without reading the history.

The CSV day files stay the record and the contract; the index is derived from their bytes only:
each file's progress (inode, size and mtime seen, byte offset indexed, lines) is kept, and
``catch_up`` indexes just the bytes after that offset. A file that shrank, was replaced (another
inode) or rewritten in place (same size, new mtime, or another header) is indexed again whole. So
a crash can never leave them disagreeing for long: the writer fsyncs a batch to the CSV first and
indexes it afterwards, and after a SIGKILL in between the next open indexes the tail the index
has not seen. A deleted index is rebuilt from the CSV.

The interface (``JournalIndex``) is what the writer, the engine's replay, the report and the
history pages need, so a shared database store (several engines journaling into one PostgreSQL)
can take the SQLite store's place later.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol

from core.ids import ms_from_iso, pos_side_of
from core.journal import schema
from core.journal.errors import JournalError
from core.journal.rows import check_row, open_day_file, row_checker
from core.money import MoneyError, dec_or_none
from core.support.safefile import UnsafeFileError, open_private

INDEX_NAME = ".index.sqlite3"
_VERSION = 4
TAIL_BYTES = 64  # bytes before the indexed offset kept to tell an append from an edit in place
INDEXED_FAMILIES = (schema.ORDERS, schema.TRADES, schema.FUNDING)
ZERO = Decimal(0)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY, name TEXT UNIQUE NOT NULL, family TEXT NOT NULL, day TEXT NOT NULL,
    ino INTEGER NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    offset INTEGER NOT NULL, lines INTEGER NOT NULL, header TEXT NOT NULL, rows INTEGER NOT NULL,
    tail BLOB NOT NULL, fill_rows INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS fills (
    fill_id TEXT PRIMARY KEY, file_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL, pos_side TEXT NOT NULL, contracts TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fills_ts ON fills(ts_ms);
CREATE INDEX IF NOT EXISTS fills_file ON fills(file_id);
CREATE TABLE IF NOT EXISTS fill_keys (symbol TEXT, pos_side TEXT, PRIMARY KEY(symbol, pos_side));
CREATE TABLE IF NOT EXISTS orders (
    okey TEXT PRIMARY KEY, file_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS orders_ts ON orders(ts_ms);
CREATE INDEX IF NOT EXISTS orders_file ON orders(file_id);
CREATE TABLE IF NOT EXISTS closes (
    close_id TEXT PRIMARY KEY, file_id INTEGER NOT NULL, closed_ms INTEGER NOT NULL,
    symbol TEXT NOT NULL, pos_side TEXT NOT NULL, full INTEGER NOT NULL, fill_ids TEXT NOT NULL,
    contracts_closed TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS closes_flat ON closes(symbol, pos_side, full, closed_ms);
CREATE INDEX IF NOT EXISTS closes_file ON closes(file_id);
CREATE TABLE IF NOT EXISTS bills (
    bill_id TEXT PRIMARY KEY, file_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS bills_file ON bills(file_id);
CREATE TABLE IF NOT EXISTS totals (
    file_id INTEGER NOT NULL, day TEXT NOT NULL, symbol TEXT NOT NULL,
    closes INTEGER NOT NULL DEFAULT 0, gross TEXT NOT NULL DEFAULT '0',
    liq TEXT NOT NULL DEFAULT '0', fills INTEGER NOT NULL DEFAULT 0,
    fees TEXT NOT NULL DEFAULT '0', volume TEXT NOT NULL DEFAULT '0',
    funding TEXT NOT NULL DEFAULT '0', PRIMARY KEY(file_id, day, symbol));
CREATE INDEX IF NOT EXISTS bills_ts ON bills(ts_ms);
CREATE INDEX IF NOT EXISTS closes_ts ON closes(closed_ms);
"""


@dataclass
class DayTotals:
    """Running sums of one (day, symbol): what ``perpdesk report`` prints."""

    closes: int = 0
    gross: Decimal = ZERO
    liq: Decimal = ZERO
    fills: int = 0
    fees: Decimal = ZERO
    volume: Decimal = ZERO
    funding: Decimal = ZERO

    def add(self, other: DayTotals) -> None:
        self.closes += other.closes
        self.gross += other.gross
        self.liq += other.liq
        self.fills += other.fills
        self.fees += other.fees
        self.volume += other.volume
        self.funding += other.funding


@dataclass(frozen=True, slots=True)
class FlatPoint:
    """Where a (symbol, pos_side) was last known flat: after fill ``fill_id`` at ``ts_ms``."""

    ts_ms: int
    fill_id: str


class JournalIndex(Protocol):
    """What the journal's users ask of an index; the SQLite store is one implementation."""

    def catch_up(self, names: Iterable[str] | None = None) -> int: ...
    def appended(self, family: str, path: Path, size_before: int, data: bytes, header: str,
                 tail: bytes) -> bool: ...
    def has(self, kind: str, key: str) -> bool: ...
    def last_fill_ms(self) -> int | None: ...
    def newest_ms(self) -> dict[str, int]: ...
    def fill_keys(self) -> list[tuple[str, str]]: ...
    def flat_point(self, symbol: str, pos_side: str, before_ms: int) -> FlatPoint | None: ...
    def totals(self, day: date | None = None) -> dict[tuple[date, str], DayTotals]: ...
    def day_rows(self, family: str) -> list[tuple[date, int]]: ...
    def close(self) -> None: ...


def _dec(value: str) -> Decimal:
    try:
        number = dec_or_none(value)
    except MoneyError:
        return ZERO
    return number if number is not None else ZERO


class SqliteJournalIndex:
    """The index in ``<journal>/.index.sqlite3`` (0600, WAL). Thread-safe: one lock, one connection.

    Why one connection under a lock rather than one per thread: the writer's commit thread, the
    event loop (id look-ups) and a report share it; every operation is short (an index probe or
    one batch's tail), so a lock costs less than coordinating several connections' caches.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.path = self.directory / INDEX_NAME
        self._lock = threading.Lock()
        # why the index starts empty, None when it was there and current: "missing", "damaged"
        # or "of another version"; the journal says so once it has caught up (a fresh journal's
        # first index is "missing" too, with nothing to rebuild)
        self.rebuilt: str | None = None
        if not os.path.lexists(self.path):
            self.rebuilt = "missing"
        try:
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        except UnsafeFileError as exc:
            raise JournalError(f"journal index {exc.message}") from None
        except OSError as exc:
            raise JournalError(f"cannot open journal index {self.path}: "
                               f"{exc.strerror or exc}") from exc
        os.close(fd)  # created 0600 and checked; sqlite opens it by name
        self._db = self._connect()

    def _connect(self) -> sqlite3.Connection:
        """Open the index; a new one gets the tables, one of another version or damaged is
        dropped and started again (it is only derived from the CSV). Opening a current index
        writes nothing: a report or a history page only reads it."""
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA busy_timeout=10000")
            db.execute("PRAGMA synchronous=NORMAL")
            version = self._version(db)
            if version != _VERSION:
                if version is not None:
                    db.close()
                    self._drop()
                    self.rebuilt = "of another version"
                    return self._connect()
                self.rebuilt = self.rebuilt or ("damaged" if self._has_tables(db) else "missing")
                self._create(db)
        except sqlite3.DatabaseError:
            db.close()
            self._drop()
            self.rebuilt = "damaged"
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA busy_timeout=10000")
            self._create(db)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.chmod(str(self.path) + suffix, 0o600)
        return db

    @staticmethod
    def _create(db: sqlite3.Connection) -> None:
        db.execute("PRAGMA journal_mode=WAL")  # kept in the file: later opens need not set it
        db.executescript(_SCHEMA)
        db.execute("INSERT OR REPLACE INTO meta VALUES ('version', ?)", (str(_VERSION),))

    @staticmethod
    def _has_tables(db: sqlite3.Connection) -> bool:
        """Anything in the file: an index without its version row is a damaged one."""
        return bool(db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0])

    @staticmethod
    def _version(db: sqlite3.Connection) -> int | None:
        try:
            row = db.execute("SELECT v FROM meta WHERE k='version'").fetchone()
        except sqlite3.OperationalError:
            return None
        return int(row[0]) if row else None

    def _drop(self) -> None:
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(str(self.path) + suffix)
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        os.close(fd)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- bringing the index up to date ----------------------------------------------------
    def catch_up(self, names: Iterable[str] | None = None) -> int:
        """Index what the day files hold beyond the recorded progress; rows indexed.

        ``names``: only these file names (the writer passes the files of the batch it just
        fsynced); None: every day file, and files gone from the folder are forgotten.
        """
        if names is None:
            wanted = [(fam, p) for fam, p in schema.day_files(self.directory) if fam in INDEXED_FAMILIES]
        else:
            wanted = []
            for name in names:
                m = schema.FILE_RE.match(name)
                if m and m.group(1) in INDEXED_FAMILIES:
                    wanted.append((m.group(1), self.directory / name))
        done = 0
        with self._lock:
            known = {row[0]: row for row in self._db.execute(
                "SELECT name, id, ino, size, mtime_ns, offset, lines, header, tail FROM files")}
            if names is None:
                present = {p.name for _, p in wanted}
                for name, row in known.items():
                    if name not in present:
                        self._forget(row[1], delete_file=True)
            for family, path in wanted:
                done += self._catch_up_file(family, path, known.get(path.name))
        return done

    def _forget(self, file_id: int, delete_file: bool) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for table in ("fills", "orders", "closes", "bills", "totals"):
                db.execute(f"DELETE FROM {table} WHERE file_id=?", (file_id,))  # noqa: S608
            if delete_file:
                db.execute("DELETE FROM files WHERE id=?", (file_id,))
            else:
                db.execute("UPDATE files SET offset=0, lines=0, rows=0, size=0, tail=x'', fill_rows=0 "
                           "WHERE id=?",
                           (file_id,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _catch_up_file(self, family: str, path: Path, known: tuple | None) -> int:  # type: ignore[type-arg]
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            if known is not None:
                self._forget(known[1], delete_file=True)
            return 0
        if known is not None and _unchanged(known, st):
            return 0
        with os.fdopen(open_day_file(path), "rb") as f:
            st = os.fstat(f.fileno())
            head = f.read(4096)
            end = head.find(b"\n")
            header_text = head[:end].decode("utf-8", "replace") if end >= 0 else ""
            whole = True
            if known is not None:
                _, file_id, ino, size, mtime_ns, offset, lines, header, tail = known
                # an append keeps the header and the bytes already indexed; an edit in place
                # (a spreadsheet saving over the file) moves them: checked at the last line
                appended = (offset > 0 and ino == st.st_ino and st.st_size >= offset and header == header_text
                            and (st.st_size > size or mtime_ns == st.st_mtime_ns)
                            and os.pread(f.fileno(), len(tail), offset - len(tail)) == tail)
                if appended:
                    whole = False
                elif offset > 0:
                    self._forget(file_id, delete_file=False)
            if end < 0:  # empty, or a header still being written: nothing to index yet
                return 0
            fields = schema.parse_line(header_text.removeprefix("\ufeff"))
            columns = schema.check_header(family, fields, path)
            if whole:
                offset, lines = end + 1, 1
            f.seek(offset)
            data = f.read()
        cut = data.rfind(b"\n") + 1  # complete lines only; a torn tail waits for its repair
        data = data[:cut]
        new_offset = offset + cut
        tail = data[-TAIL_BYTES:] if cut >= TAIL_BYTES else _read_tail(path, new_offset)
        expect = 0 if whole else offset  # the progress recorded now (0 once forgotten)
        return self._index_lines(family, path, columns, data, lines, header_text, st,
                                 new_offset, known, expect, tail)

    def appended(self, family: str, path: Path, size_before: int, data: bytes, header: str,
                 tail: bytes) -> bool:
        """Index ``data``, which this process's journal writer just appended (and fsynced) at
        byte ``size_before`` of ``path``, from memory instead of reading it back. ``header`` and
        ``tail``: the file's header line and its TAIL_BYTES before ``size_before``, as the writer
        read them just before appending (it reads the header each batch anyway).

        Why: reading each batch back and re-checking every value of lines the writer formatted
        itself cost as much as writing them (a fifth of the stream's CPU). The CSV stays the
        record: False (nothing indexed) unless the index's progress for the file is exactly
        ``size_before`` and the file is exactly that plus ``data`` now; the caller then catches
        up from the file's bytes as before.
        """
        if family not in INDEXED_FAMILIES:
            return True
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if st.st_size != size_before + len(data) or not data.endswith(b"\n"):
            return False
        with self._lock:
            known = self._db.execute(
                "SELECT name, id, ino, size, mtime_ns, offset, lines, header, tail FROM files "
                "WHERE name=?", (path.name,)).fetchone()
            if known is None:
                if size_before != 0:
                    return False
                end = data.find(b"\n")
                header_text = data[:end].decode("utf-8", "replace")
                body, first_line, expect = data[end + 1:], 1, 0
            else:
                if known[5] != size_before or known[2] != st.st_ino or size_before == 0 \
                        or known[7] != header or known[8] != tail:
                    return False  # edited in place meanwhile: the caller's catch-up sorts it out
                header_text, body, first_line, expect = known[7], data, known[6], size_before
            columns = schema.check_header(family, schema.parse_line(header_text.removeprefix("\ufeff")), path)
            tail = ((known[8] if known else b"") + data)[-TAIL_BYTES:]  # the bytes before the new offset
            self._index_lines(family, path, columns, body, first_line, header_text, st,
                              size_before + len(data), known, expect, tail, trusted=True)
        return True

    def _index_lines(self, family: str, path: Path, columns: tuple[str, ...], data: bytes,
                     first_line: int, header_text: str, st: os.stat_result, new_offset: int,
                     known: tuple | None, expect: int,  # type: ignore[type-arg]
                     tail: bytes, trusted: bool = False) -> int:
        text = data.decode("utf-8", "replace")
        physical = text.split("\n")[:-1] if text else []
        scan = _Scan(family, path, columns, trusted)
        for number, line in enumerate(physical, start=first_line + 1):
            scan.add(number, line)
        lines = first_line + len(physical)
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            now = db.execute("SELECT offset FROM files WHERE name=?", (path.name,)).fetchone()
            if (now is None) != (known is None) or (now is not None and now[0] != expect):
                db.execute("ROLLBACK")  # another process indexed this file meanwhile
                return 0
            if known is None:
                cur = db.execute(
                    "INSERT INTO files(name, family, day, ino, size, mtime_ns, offset, lines, "
                    "header, rows, tail, fill_rows) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (path.name, family, path.stem.rsplit("_", 1)[1], st.st_ino, st.st_size,
                     st.st_mtime_ns, new_offset, lines, header_text, scan.rows, tail,
                     len(scan.fills)))
                file_id = int(cur.lastrowid or 0)
            else:
                file_id = known[1]
                db.execute("UPDATE files SET ino=?, size=?, mtime_ns=?, offset=?, lines=?, "
                           "header=?, rows=rows+?, tail=?, fill_rows=fill_rows+? WHERE id=?",
                           (st.st_ino, st.st_size, st.st_mtime_ns, new_offset, lines,
                            header_text, scan.rows, tail, len(scan.fills), file_id))
            self._store(file_id, scan)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return scan.rows

    def _store(self, file_id: int, scan: _Scan) -> None:
        db = self._db
        db.executemany("INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?)",
                       [(f[0], file_id, *f[1:]) for f in scan.fills])
        db.executemany("INSERT OR IGNORE INTO fill_keys VALUES (?,?)",
                       {(f[2], f[3]) for f in scan.fills})
        db.executemany("INSERT OR IGNORE INTO orders VALUES (?,?,?)",
                       [(o[0], file_id, o[1]) for o in scan.orders])
        db.executemany("INSERT OR IGNORE INTO closes VALUES (?,?,?,?,?,?,?,?)",
                       [(c[0], file_id, *c[1:]) for c in scan.closes])
        db.executemany("INSERT OR IGNORE INTO bills VALUES (?,?,?)",
                       [(b[0], file_id, b[1]) for b in scan.bills])
        for (tday, symbol), t in scan.totals.items():
            old = db.execute(
                "SELECT closes, gross, liq, fills, fees, volume, funding FROM totals "
                "WHERE file_id=? AND day=? AND symbol=?", (file_id, tday, symbol)).fetchone()
            if old is not None:
                t.add(DayTotals(old[0], Decimal(old[1]), Decimal(old[2]), old[3],
                                Decimal(old[4]), Decimal(old[5]), Decimal(old[6])))
            db.execute("INSERT OR REPLACE INTO totals VALUES (?,?,?,?,?,?,?,?,?,?)",
                       (file_id, tday, symbol, t.closes, str(t.gross), str(t.liq), t.fills,
                        str(t.fees), str(t.volume), str(t.funding)))

    # ---- questions -------------------------------------------------------------------------
    _LOOKUP = {"fill": "SELECT 1 FROM fills WHERE fill_id=?",
               "order": "SELECT 1 FROM orders WHERE okey=?",
               "close": "SELECT 1 FROM closes WHERE close_id=?",
               "bill": "SELECT 1 FROM bills WHERE bill_id=?"}

    def has(self, kind: str, key: str) -> bool:
        """Is ``key`` (a fill id, order key, close id or bill id by ``kind``) indexed?"""
        with self._lock:
            return self._db.execute(self._LOOKUP[kind], (key,)).fetchone() is not None

    def last_fill_ms(self) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT MAX(ts_ms) FROM fills").fetchone()
        return row[0] if row else None

    def newest_ms(self) -> dict[str, int]:
        """The newest row time indexed per id kind (fill, order, close, bill); -1 when none."""
        with self._lock:
            return {kind: (self._db.execute(sql).fetchone()[0] or -1) for kind, sql in (
                ("fill", "SELECT MAX(ts_ms) FROM fills"), ("order", "SELECT MAX(ts_ms) FROM orders"),
                ("close", "SELECT MAX(closed_ms) FROM closes"),
                ("bill", "SELECT MAX(ts_ms) FROM bills"))}

    def fill_keys(self) -> list[tuple[str, str]]:
        """Every (symbol, pos_side) that has a fill."""
        with self._lock:
            return [(r[0], r[1]) for r in self._db.execute(
                "SELECT symbol, pos_side FROM fill_keys ORDER BY symbol, pos_side")]

    def flat_point(self, symbol: str, pos_side: str, before_ms: int) -> FlatPoint | None:
        """The newest journaled full close of (symbol, pos_side) at or before ``before_ms`` after
        which that key held nothing: its fill is known and did not also open a new life (a net
        position crossing zero)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT closed_ms, fill_ids, contracts_closed FROM closes WHERE symbol=? AND "
                "pos_side=? AND full=1 AND closed_ms<=? ORDER BY closed_ms DESC LIMIT 50",
                (symbol, pos_side, before_ms)).fetchall()
            for closed_ms, fill_ids, contracts_closed in rows:
                ids = [i for i in fill_ids.split(schema.FILL_IDS_SEPARATOR) if i]
                if len(ids) != 1:
                    continue  # a row merging several fills: its last fill is not certain
                fill = self._db.execute("SELECT ts_ms, contracts FROM fills WHERE fill_id=?",
                                        (ids[0],)).fetchone()
                if fill is None or fill[0] != closed_ms:
                    continue
                if _dec(fill[1]) != _dec(contracts_closed):
                    continue  # the fill crossed zero: a new life opened with it
                return FlatPoint(fill[0], ids[0])
        return None

    def totals(self, day: date | None = None) -> dict[tuple[date, str], DayTotals]:
        """Sums per (UTC day, symbol) over every indexed row; only ``day``'s if given."""
        sql = ("SELECT day, symbol, closes, gross, liq, fills, fees, volume, funding FROM totals")
        args: tuple[str, ...] = ()
        if day is not None:
            sql += " WHERE day=?"
            args = (day.isoformat(),)
        out: dict[tuple[date, str], DayTotals] = defaultdict(DayTotals)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        for d, symbol, closes, gross, liq, fills, fees, volume, funding in rows:
            t = out[(date.fromisoformat(d), symbol)]
            t.closes += closes
            t.gross += Decimal(gross)
            t.liq += Decimal(liq)
            t.fills += fills
            t.fees += Decimal(fees)
            t.volume += Decimal(volume)
            t.funding += Decimal(funding)
        return dict(out)

    def day_rows(self, family: str) -> list[tuple[date, int]]:
        """(day, complete rows) of ``family``'s files, oldest first; for orders, fill rows only."""
        with self._lock:
            column = "fill_rows" if family == schema.ORDERS else "rows"
            rows = self._db.execute(f"SELECT day, {column} FROM files WHERE family=? "  # noqa: S608
                                    "ORDER BY day", (family,)).fetchall()
        return [(date.fromisoformat(d), n) for d, n in rows]

    def settled(self, path: Path) -> bool:
        """Is ``path`` indexed to its last byte, unchanged since (same inode, size and mtime)?
        Such a file ends in a whole line: its torn-tail check can be skipped."""
        try:
            st = os.lstat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid():
            return False  # the full check names it (a link, a folder, another user's file)
        with self._lock:
            row = self._db.execute("SELECT ino, size, mtime_ns, offset FROM files WHERE name=?",
                                   (path.name,)).fetchone()
        return row is not None and tuple(row) == (st.st_ino, st.st_size, st.st_mtime_ns,
                                                  st.st_size)

    def fresh(self, family: str) -> bool:
        """Does every ``family`` day file on disk match what is indexed (name, size, inode)?"""
        with self._lock:
            known = {r[0]: r[1:] for r in self._db.execute(
                "SELECT name, ino, size, offset FROM files WHERE family=?", (family,))}
        seen = 0
        for fam, path in schema.day_files(self.directory):
            if fam != family:
                continue
            seen += 1
            row = known.get(path.name)
            try:
                st = os.lstat(path)
            except OSError:
                return False
            if row is None or row[0] != st.st_ino or row[1] != st.st_size or row[2] != st.st_size:
                return False
        return seen == len(known)

    def counts(self) -> dict[str, int]:
        """Rows per id table (tests and diagnostics)."""
        with self._lock:
            return {t: self._db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]  # noqa: S608
                    for t in ("fills", "orders", "closes", "bills")}


def _unchanged(known: tuple, st: os.stat_result) -> bool:  # type: ignore[type-arg]
    """Indexed to its end and not touched since (a link or another user's file is not: it goes
    on to be refused by name)."""
    _, _, ino, size, mtime_ns, offset, _, _, _ = known
    return (ino == st.st_ino and size == st.st_size and mtime_ns == st.st_mtime_ns
            and offset == st.st_size and stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid())


def _read_tail(path: Path, end: int) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return os.pread(fd, min(TAIL_BYTES, end), end - min(TAIL_BYTES, end))
    finally:
        os.close(fd)


class _Scan:
    """The ids and day totals of a run of complete lines of one day file."""

    def __init__(self, family: str, path: Path, columns: tuple[str, ...], trusted: bool = False) -> None:
        """``trusted``: lines this process's writer formatted from checked values just now; the
        per-value checks (which name a bad column in a file someone edited) are skipped."""
        self.family = family
        self.trusted = trusted
        self.path = path
        self.columns = columns
        self.width = len(columns)
        self.col = {name: i for i, name in enumerate(columns)}
        self.checks = row_checker(family, columns)
        self.fills: list[tuple[str, int, str, str, str]] = []
        self.orders: list[tuple[str, int]] = []
        self.closes: list[tuple[str, int, str, str, int, str, str]] = []
        self.bills: list[tuple[str, int]] = []
        self.totals: dict[tuple[str, str], DayTotals] = defaultdict(DayTotals)
        self.rows = 0
        self._add = {schema.ORDERS: self._orders, schema.TRADES: self._trades,
                     schema.FUNDING: self._funding}[family]

    def add(self, number: int, line: str) -> None:
        fields = schema.parse_line(line) if '"' in line else line.rstrip("\r").split(",")
        if fields is None or len(fields) != self.width:
            return  # torn or foreign line: the reader skips it too
        if not self.trusted and not self.checks(fields):  # name column and line, as the reader does
            check_row(self.family, self.path, number,
                       dict(zip(self.columns, fields, strict=True)), False)
        self.rows += 1
        self._add(fields)

    def _orders(self, fields: list[str]) -> None:
        col = self.col
        if fields[col["event"]] != schema.FILL_EVENT:
            self.orders.append((schema.order_key(fields[col["order_id"]], fields[col["event"]]),
                                ms_from_iso(fields[col["ts"]])))
            return
        ts = fields[col["ts"]]
        symbol = fields[col["symbol"]]
        self.fills.append((fields[col["fill_id"]], ms_from_iso(ts), symbol,
                           fields[col["pos_side"]] or "net", fields[col["contracts"]]))
        t = self.totals[(_day_of(ts), symbol)]
        t.fills += 1
        t.fees += _dec(fields[col["fee"]])
        t.volume += _dec(fields[col["coins"]])

    def _trades(self, fields: list[str]) -> None:
        col = self.col
        closed = fields[col["closed_at"]]
        symbol = fields[col["symbol"]]
        self.closes.append((fields[col["close_id"]], ms_from_iso(closed), symbol,
                            pos_side_of(fields[col["position_id"]]),
                            1 if _dec(fields[col["size_after"]]) == 0 else 0,
                            fields[col["fill_ids"]], fields[col["contracts_closed"]]))
        t = self.totals[(_day_of(closed), symbol)]
        t.closes += 1
        t.gross += _dec(fields[col["gross_pnl"]])
        t.liq += _dec(fields[col["liq_penalty"]])

    def _funding(self, fields: list[str]) -> None:
        col = self.col
        ts = fields[col["ts"]]
        self.bills.append((fields[col["bill_id"]], ms_from_iso(ts)))
        self.totals[(_day_of(ts), fields[col["symbol"]])].funding += _dec(fields[col["amount"]])


def _day_of(ts: str) -> str:
    if len(ts) == 24 and ts.endswith("Z"):  # the writer's own format: the UTC day leads
        return ts[:10]
    return datetime.fromisoformat(ts).astimezone(UTC).date().isoformat()


def open_index(directory: Path) -> SqliteJournalIndex:
    """The index of the journal in ``directory``, brought up to date with every day file."""
    index = SqliteJournalIndex(directory)
    try:
        index.catch_up()
    except BaseException:
        index.close()
        raise
    return index
