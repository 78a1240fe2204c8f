"""RemoteEngine: the EngineView of an engine in another process, over its control socket.

Why not a second console: the console already depends only on ``core.service.view.EngineView``,
so `perpdesk attach` is the very same PerpdeskApp driven by this object instead of an in-process
engine (protocol: docs/service.md, server: core/service/server.py).

What it keeps: the engine's state as the last snapshot and the events since then said it
(positions with their TP/SL, account, marks, links, risk line), the last sequence number seen,
and the ids of the fills, closes and funding bills it has handed to the console. So:
- a reconnect to the same engine run resumes after that number (the engine replays what is
  missing); a fresh snapshot instead (the engine restarted, or this console fell behind and was
  dropped) is diffed against what the console shows (positions gone are removed), the rows it
  missed are read from the journal (same host, same user) and handed over once: every day file
  from the one the lost connection started on (or of the newest row it had) to today, so a gap
  across UTC midnight loses nothing; and the notices it missed are shown again from the
  snapshot's last ones, with a line naming the engine's log when some may be older than those;
- a command gets a random id and stays pending until its result arrives; after a reconnect to
  the same run it is sent again with the same id, and the engine answers with the first
  execution's result instead of running it twice. If the engine restarted meanwhile nothing is
  known of it, and it fails with a line saying so (never sent a second time).
- losing the engine is shown as the ``engine`` link (header) and a notice; it reconnects by
  itself with backoff, and says why the engine stopped when it was told.

This module holds the connection's life (hello, snapshot, reconnect, the silence watchdog) and the
catch-up after a fresh snapshot; the state it keeps and the EngineView reads over it are
console/remote_view.py's ``RemoteView``, the commands in flight console/remote_commands.py's.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from console.errors import log_line
from console.remote_commands import EngineUnavailable, PendingCommands
from console.remote_view import RemoteView, dec_or_none, now_utc, row_id, row_ts
from core.events import (
    AccountSnapshot,
    Command,
    CommandResult,
    LinkState,
    Notice,
    NoticeLevel,
    PositionGone,
    RiskStatus,
    StreamStatus,
)
from core.model import Instrument, PositionSnapshot
from core.service import protocol as proto
from core.service.codec import WireError, decode
from core.service.server import NOTICE_HISTORY
from core.service.view import FULL
from core.support.errors import PerpdeskError
from core.venue.base import VenueCapabilities

ENGINE_LINK = "engine"  # the header's link to the engine process
BACKOFF_S = (0.2, 0.5, 1.0, 2.0, 3.0)  # reconnect delays; the last one repeats
CALL_TIMEOUT_S = 30.0
SILENCE_S = 7.0  # no frame for this long (the engine ticks every 2 s): the engine is lost
HELLO_TIMEOUT_S = 10.0  # an engine that accepts but does not answer (stopped) is tried again
# rows are dated by the exchange's clock, the days to re-read by this computer's: read from the
# day this much before the lost connection began (or its newest row), so clock skew or a fill
# delivered late cannot put a missed row in a day file that is not read
CATCH_UP_MARGIN = timedelta(minutes=10)


class RemoteEngine(RemoteView):
    """EngineView + JournalView + ProtectionView + CapabilitiesView of an engine reached through
    ``path``."""

    def __init__(self, path: Path, *, read_only: bool = False, journal_dir: Path | None = None,
                 backoff: tuple[float, ...] = BACKOFF_S, clock: Callable[[], datetime] | None = None,
                 ) -> None:
        super().__init__(read_only=read_only)
        self.path = Path(path)
        self.clock = clock or now_utc  # which day it is (tests move it across midnight)
        self.journal_dir = journal_dir
        self.backoff = backoff
        self.info: dict[str, Any] = {}
        self.session: str | None = None
        self.seq = 0
        self.connected = False
        self.reconnects = 0  # connections after the first (tests, diagnostics)
        self.fresh_snapshots = 0
        self.stop_reason = ""
        self._connected_at: datetime | None = None  # when the current connection began (clock)
        self.pending = PendingCommands()
        self._writer: asyncio.StreamWriter | None = None
        self._reader: asyncio.StreamReader | None = None
        self._task: asyncio.Task[None] | None = None
        self._catch_up: asyncio.Task[None] | None = None
        self._closing = False
        self._heard = 0.0  # loop time of the last frame
        self._silent = ""  # why the watchdog cut the link

    # ================================================================ connection

    async def connect(self, timeout: float = 5.0) -> None:
        """The first connection (hello and snapshot); EngineUnavailable with one line if none."""
        try:
            await asyncio.wait_for(self._open(first=True), timeout)
        except (OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
            raise EngineUnavailable(f"perpdesk attach: no engine answers on {self.path} "
                                    f"({getattr(exc, 'strerror', None) or type(exc).__name__}); "
                                    "start one with `perpdesk serve`") from None

    def start(self) -> None:
        """Read the engine's frames in the background, reconnecting whenever the link drops."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="remote-engine")

    async def close(self) -> None:
        self._closing = True
        for task in (self._task, self._catch_up):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._drop_link()

    def _drop_link(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            with contextlib.suppress(Exception):
                writer.close()

    async def _open(self, *, first: bool = False) -> None:
        reader, writer = await asyncio.open_unix_connection(str(self.path), limit=proto.MAX_FRAME)
        try:
            hello, snapshot = await self._handshake(reader, writer)
        except BaseException:
            writer.close()
            raise
        same_run = hello.get("session") == self.session
        last_seq, told = self.seq, bool(self.stop_reason)
        self.info = dict(hello.get("engine") or {})
        if self.journal_dir is None and self.info.get("journal"):
            self.journal_dir = Path(self.info["journal"])
        self.session = str(hello.get("session"))
        self._reader, self._writer = reader, writer
        self.connected = True
        self.stop_reason = ""
        self._apply_snapshot(snapshot, first=first, same_run=same_run, last_seq=last_seq, told=told)
        self._connected_at = self.clock()
        if not first:
            self.reconnects += 1
        self.pending.reconnected(same_run, self._send)

    async def _handshake(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                         ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Our hello; the engine's hello (or its refusal, one line) and its snapshot."""
        role = proto.ROLE_READ_ONLY if self.role_read_only else proto.ROLE_CONSOLE
        writer.write(proto.frame({"t": "hello", "v": proto.PROTOCOL_VERSION, "role": role,
                                  "session": self.session, "seq": self.seq}))
        await writer.drain()
        hello = proto.parse(await reader.readuntil(b"\n"))
        if hello["t"] == "refused":
            raise EngineUnavailable(f"perpdesk attach: the engine refused this console: {hello.get('reason')}")
        refusal = proto.version_refusal(hello.get("v"), we_are="console")
        if refusal is not None or hello["t"] != "hello":
            raise EngineUnavailable(f"perpdesk attach: {refusal or 'unexpected answer ' + hello['t']}")
        snapshot = proto.parse(await reader.readuntil(b"\n"))
        if snapshot["t"] != "snapshot":
            raise EngineUnavailable(f"perpdesk attach: expected a snapshot, got {snapshot['t']}")
        return hello, snapshot

    async def _run(self) -> None:
        attempt = 0
        while not self._closing:
            if self._reader is None:
                try:
                    await asyncio.wait_for(self._open(), HELLO_TIMEOUT_S)
                    attempt = 0
                except EngineUnavailable as exc:
                    self._lost(exc.message)  # refused (another version, another user): say so
                    await asyncio.sleep(self.backoff[-1])
                    continue
                except (OSError, asyncio.IncompleteReadError, ValueError, TimeoutError):
                    self._drop_link()
                    await asyncio.sleep(self.backoff[min(attempt, len(self.backoff) - 1)])
                    attempt += 1
                    continue
            reader = self._reader
            assert reader is not None
            why = "the engine closed the connection"
            self._heard = asyncio.get_running_loop().time()
            watchdog = asyncio.create_task(self._watch_silence(), name="remote-silence")
            try:
                while True:
                    line = await reader.readline()
                    if not line:
                        break
                    self._heard = asyncio.get_running_loop().time()
                    why = self._dispatch(proto.parse(line)) or why
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever broke the link: reconnect, resync
                why = f"connection lost ({type(exc).__name__}: {exc})"
                log_line("WARNING", f"engine link: {why}", exc)
            finally:
                watchdog.cancel()
            self._drop_link()
            self._lost(self.stop_reason or self._silent or why)
            self._silent = ""

    async def _watch_silence(self) -> None:
        """The engine ticks every 2 s; nothing for SILENCE_S means it is hung or stopped (its
        socket stays open then), so the link is cut and tried again. A check that itself ran
        late (this console was stopped, SIGSTOP or a suspended laptop) is not the engine's
        silence: the data waiting in the socket is read first."""
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(1.0)
            now = loop.time()
            if now - before > 2.0:
                self._heard = now  # we were the ones asleep
            elif now - self._heard > SILENCE_S:
                self._silent = f"no word from the engine for {SILENCE_S:g} s"
                self._drop_link()  # the reader sees the end of the connection
                return

    def _lost(self, why: str) -> None:
        was = self.connected
        self.connected = False
        self._links[ENGINE_LINK] = LinkState.DISCONNECTED
        if was:
            self._publish(StreamStatus(ENGINE_LINK, LinkState.DISCONNECTED, None, why, now_utc()))
            self._publish(Notice(NoticeLevel.WARNING, f"engine lost: {why}; reconnecting…", now_utc()))

    def _send(self, payload: bytes) -> bool:
        if self._writer is None:
            return False
        try:
            self._writer.write(payload)
        except (OSError, RuntimeError):
            return False
        return True

    # ================================================================ frames

    def _dispatch(self, message: dict[str, Any]) -> str | None:
        kind = message["t"]
        if kind == "ev":
            self.seq = max(self.seq, int(message["seq"]))
            try:
                event = decode(message["e"])
            except WireError:
                return None
            self._apply(event, message.get("tpsl"))
        elif kind == "result":
            self.pending.result(message)
        elif kind == "reply":
            self.pending.reply(message)
        elif kind == "snapshot":
            self._apply_snapshot(message, first=False, same_run=True, last_seq=self.seq, told=False)
        elif kind == "bye":
            self.stop_reason = str(message.get("reason") or "engine stopped")
            return self.stop_reason
        return None

    def _apply_snapshot(self, message: dict[str, Any], *, first: bool, same_run: bool = True,
                        last_seq: int = 0, told: bool = False) -> None:
        """``same_run``: the engine run this console was attached to; ``last_seq``: the last
        sequence number it saw there; ``told``: that run said goodbye before the link went."""
        state = message["state"]
        self.seq = int(message["seq"])
        self._instruments = {i.symbol: i for i in (decode(x, Instrument) for x in state["instruments"])}
        self.read_only = self.role_read_only or bool(state.get("read_only"))
        caps = state.get("capabilities")
        self._capabilities = decode(caps, VenueCapabilities) if caps else FULL
        before = dict(self._positions)
        self._positions, self._tpsl = {}, {}
        for item in state["positions"]:
            snap = decode(item["p"], PositionSnapshot)
            key = (snap.symbol, snap.pos_side.value)
            self._positions[key] = snap
            tp, sl = item.get("tpsl") or (None, None)
            self._tpsl[key] = (dec_or_none(tp), dec_or_none(sl))
        self._marks = {s: Decimal(p) for s, p in state["marks"].items()}
        self._links = {s: LinkState(v) for s, v in state["links"].items()}
        self._links[ENGINE_LINK] = LinkState.CONNECTED
        self._account = decode(state["account"], AccountSnapshot) if state["account"] else None
        self._risk = decode(state["risk"], RiskStatus)
        if first:
            return  # the console seeds itself from these (PerpdeskApp._seed, today's journal)
        for key, old in before.items():
            if key not in self._positions:
                self._publish(PositionGone(old.symbol, old.pos_side, old.position_id))
        for snap in self._positions.values():
            self._publish(snap)
        if self._account is not None:
            self._publish(self._account)
        for stream, link in self._links.items():
            self._publish(StreamStatus(stream, link, None, "", now_utc()))
        self._publish(self._risk)
        self._publish(Notice(NoticeLevel.INFO, "engine reconnected" + (
            "" if message.get("resumed") else ": resynced from a snapshot"), now_utc()))
        if not message.get("resumed"):
            self.fresh_snapshots += 1
            self._notices_missed(state.get("notices") or [], last_seq if same_run else 0,
                                 lost_old_run=not same_run and not told)
            self._catch_up = asyncio.create_task(self._rows_missed(self._catch_up_from()),
                                                 name="remote-catch-up")

    def _notices_missed(self, history: list[Any], after: int, *, lost_old_run: bool) -> None:
        """Show again the engine's last notices this console did not receive (``after`` its
        last sequence number of this run); when some may be older than the engine keeps, or
        were raised by an engine run that stopped while the link was down, say where they are."""
        kept: list[tuple[int, Notice]] = []
        for item in history:
            try:
                seq, notice = int(item[0]), decode(item[1], Notice)
            except (WireError, TypeError, ValueError, IndexError):
                continue
            kept.append((seq, notice))
        shown = 0
        for seq, notice in kept:
            if seq > after:
                when = f" at {notice.ts.astimezone(UTC):%H:%M:%S} UTC" if notice.ts is not None else ""
                self._publish(Notice(notice.level, f"{notice.text} (while this console was away{when})",
                                     notice.ts))
                shown += 1
        older = len(kept) >= NOTICE_HISTORY and kept[0][0] > after + 1
        if older or lost_old_run:
            logs = self.info.get("logs") or "the engine's logs folder"
            self._publish(Notice(NoticeLevel.WARNING, (
                f"{shown} notice(s) raised while this console was away shown again; "
                + ("older ones " if older else "those of the engine run that stopped meanwhile ")
                + f"may be missing here: {logs}/perpdesk_<date>.log has every one"), now_utc()))

    def _catch_up_from(self) -> date:
        """The first day file that may hold a row this console missed: rows arrive in order, so
        none is older than the lost connection's start or the newest row it handed over."""
        bounds = [t for t in (self._connected_at, self._newest_row) if t is not None]
        start = max(bounds) if bounds else self.clock()
        return (start - CATCH_UP_MARGIN).astimezone(UTC).date()

    async def _rows_missed(self, first_day: date) -> None:
        """After a fresh snapshot: the journal rows this console never received, from
        ``first_day`` to today, oldest first, each once."""
        try:
            today = self.clock().astimezone(UTC).date()
            with contextlib.suppress(PerpdeskError, TimeoutError):
                await self.call("flush")
            unseen: list[object] = []
            day = first_day
            while day <= today:
                unseen += await self._unseen(day)
                day += timedelta(days=1)
        except Exception as exc:  # noqa: BLE001 - the live view goes on; say what is missing
            self._publish(Notice(NoticeLevel.WARNING,
                                 f"rows missed while detached not read from the journal: {exc}", now_utc()))
            return
        unseen.sort(key=lambda e: row_ts(e) or datetime.min.replace(tzinfo=UTC))
        for event in unseen:
            self._publish(event)

    # ================================================================ EngineView

    async def submit(self, command: Command) -> CommandResult:
        """Send ``command`` with a new id and the position facts it is bound to; the engine's
        answer (or why there is none). Sent even from a read-only console: the engine refuses."""
        cid = secrets.token_hex(12)
        from core.service.codec import encode

        message: dict[str, Any] = {"t": "cmd", "id": cid, "cmd": encode(command)}
        expect = self._expect(command)
        if expect is not None:
            message["expect"] = expect
        payload = proto.frame(message)
        future = self.pending.command(cid, payload)
        if not self._send(payload):
            self._publish(Notice(NoticeLevel.WARNING, "engine not connected: the command is sent "
                                 "when it is back", now_utc()))
        return await future

    async def call(self, method: str) -> Any:
        cid = secrets.token_hex(12)
        future = self.pending.call(cid)
        if not self._send(proto.frame({"t": "call", "id": cid, "m": method})):
            self.pending.calls.pop(cid, None)
            raise EngineUnavailable("engine not connected")
        try:
            return await asyncio.wait_for(future, CALL_TIMEOUT_S)
        finally:
            self.pending.calls.pop(cid, None)

    async def reconcile(self) -> Any:
        return decode(await self.call("reconcile"))

    # ================================================================ JournalView (same host)

    async def today_history(self, day: date) -> Any:
        """The engine flushes its journal, then this process reads the day's files; rows the
        console was not handed live yet are published, and all of them are remembered."""
        with contextlib.suppress(PerpdeskError, TimeoutError):
            await self.call("flush")
        history, unseen = await self._read_day(day)
        if self.fresh_snapshots:
            for event in unseen:  # after a resync: the rows made while this console was away
                self._publish(event)
        return history

    async def _unseen(self, day: date) -> list[object]:
        return (await self._read_day(day))[1]

    async def _read_day(self, day: date) -> tuple[Any, list[object]]:
        """``day``'s journal rows, and those of them not handed over yet (now remembered)."""
        from core.journal.history import read_day_async

        if self.journal_dir is None:
            raise EngineUnavailable("the engine did not say where its journal is")
        history = await read_day_async(self.journal_dir, day)
        unseen: list[object] = []
        for item in [*history.fills, *history.closes, *history.funding]:
            event = getattr(item, "close", item)
            row = "c|" + item.close_id if hasattr(item, "close_id") else row_id(event)
            if row is not None and row not in self._delivered:
                self._delivered.add(row)
                self._saw_row(event)
                unseen.append(event)
        return history, unseen

    def history_pager(self, kind: Any, page_size: int = 200) -> Any:
        from core.journal.history import HistoryPager

        if self.journal_dir is None:
            raise EngineUnavailable("the engine did not say where its journal is")
        return HistoryPager(self.journal_dir, kind, page_size)


