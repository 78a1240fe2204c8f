"""The engine's control socket: consoles attach to a running engine (``perpdesk serve``).

Why this shape:
- The engine never waits on a console. Its subscriber callback only numbers the event, encodes
  it once and hands the bytes to each client's bounded queue; each client has its own writer
  task that alone awaits the socket. Marks, positions, the account and link states are
  latest-value per key (a slow console gets the newest, not every one); fills, closes, funding,
  notices and risk events are kept in order. A client whose ordered queue passes MAX_QUEUE is
  dropped and comes back with a fresh snapshot, so a frozen console (SIGSTOP) costs the engine
  one deque append per event until then.
- Every event has a sequence number. The ordered ones are also kept in a ring, so a console that
  reconnects to the same engine run (``session``) resumes after the last number it saw; one that
  fell out of the ring, or meets a restarted engine, gets a fresh snapshot and reads what it
  missed from the journal (it is on the same host, as the same user).
- Commands carry a client-chosen id: a resend of the same id (a console that reconnected before
  the answer) gets the first execution's result, never a second execution. Commands from every
  console run one at a time, and a close or TP/SL carries the position facts the trader
  confirmed: the engine refuses when the position changed meanwhile (another console, the
  exchange), so the console asks again.
- Only this user's processes: the socket is 0600 in a 0700 folder, and each connection's peer
  uid (SO_PEERCRED) must be ours. No TCP listener; remote use is SSH.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import struct
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from core.events import (
    AccountSnapshot,
    Candle,
    CloseAll,
    ClosePosition,
    Command,
    CommandResult,
    LinkState,
    Notice,
    RiskStatus,
    SetTpSl,
)
from core.model import Instrument, PositionSnapshot, PosSide
from core.service import protocol as proto
from core.service.codec import WireError, decode, encode
from core.service.paths import private_runtime_dir
from core.service.state_keys import state_key
from core.service.view import capabilities_of

MAX_QUEUE = 5000  # ordered events waiting for one console before it is dropped
RING = 20000  # ordered events kept for consoles that resume after a reconnect
RESULTS = 4096  # command ids remembered (at-most-once execution)
ID_MAX = 64
TICK_S = 2.0  # a frame every console gets even when nothing happens: silence means a lost engine
LAG_PROBE_S = 0.1  # the event loop's lateness is sampled this often...
LAG_WINDOW = 100  # ...and `status` shows the worst of the last 10 s
NOTICE_HISTORY = 20  # the last notices, in every snapshot: a console that resyncs shows those it missed


class ServedEngine(Protocol):
    """What the server reads from the engine (core.engine.Engine implements it)."""

    read_only: bool

    @property
    def instruments(self) -> dict[str, Instrument]: ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]: ...

    async def submit(self, command: Command) -> CommandResult: ...

    def positions(self) -> list[PositionSnapshot]: ...

    def account(self) -> AccountSnapshot | None: ...

    def mark(self, symbol: str) -> Any: ...

    def links(self) -> dict[str, LinkState]: ...

    def risk_status(self) -> RiskStatus: ...

    def tp_sl(self, symbol: str, pos_side: PosSide) -> tuple[Any, Any]: ...

    async def reconcile(self) -> Any: ...


_TICK = proto.frame({"t": "tick"})


def peer_uid(sock: socket.socket) -> int:
    """The uid of the process at the other end of a connected Unix socket (SO_PEERCRED)."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    _pid, uid, _gid = struct.unpack("3i", raw)
    return int(uid)


def position_facts(snap: PositionSnapshot) -> list[str]:
    """What a confirmation is bound to (console/trading.py _facts), as sent in ``expect``."""
    return [snap.symbol, snap.pos_side.value, snap.position_id, snap.side.value,
            format(snap.contracts.normalize(), "f")]


class _Client:
    """One attached console: its queues and its writer task (the only place that awaits it)."""

    def __init__(self, server: ControlServer, writer: asyncio.StreamWriter, role: str, pid: int) -> None:
        self.server = server
        self.writer = writer
        self.role = role
        self.pid = pid
        self.control: deque[bytes] = deque()  # hello, snapshot, results, replies: before events
        self.ordered: deque[tuple[int, bytes]] = deque()
        self.latest: dict[tuple[str, Any], tuple[int, bytes]] = {}
        self.wake = asyncio.Event()
        self.closed = False
        self.task: asyncio.Task[None] | None = None

    @property
    def read_only(self) -> bool:
        return self.role != proto.ROLE_CONSOLE

    def send(self, payload: bytes) -> None:
        if not self.closed:
            self.control.append(payload)
            self.wake.set()

    def offer(self, seq: int, key: tuple[str, Any] | None, payload: bytes) -> None:
        if self.closed:
            return
        if key is None:
            if len(self.ordered) >= MAX_QUEUE:
                self.drop(f"more than {MAX_QUEUE} events behind")
                return
            self.ordered.append((seq, payload))
        else:
            self.latest[key] = (seq, payload)
            if len(self.latest) > MAX_QUEUE:  # one key per order id: bounded as well
                self.drop(f"more than {MAX_QUEUE} states behind")
                return
        self.wake.set()

    def drop(self, why: str) -> None:
        """Cut a console that cannot keep up; it reconnects and resyncs from a snapshot."""
        if self.closed:
            return
        logger.warning(f"SERVICE dropped console pid {self.pid}: {why}")
        self.close(abort=True)

    def close(self, *, abort: bool = False) -> None:
        self.closed = True
        self.server.clients.discard(self)
        self.wake.set()
        if abort:
            self.writer.transport.abort()

    def _pending(self) -> list[bytes]:
        out = list(self.control)
        self.control.clear()
        events = list(self.ordered)
        self.ordered.clear()
        if self.latest:
            events.extend(self.latest.values())
            self.latest.clear()
            events.sort(key=lambda item: item[0])
        out.extend(payload for _, payload in events)
        return out

    async def run_writer(self) -> None:
        try:
            while True:
                await self.wake.wait()
                self.wake.clear()
                chunk = self._pending()
                if chunk:
                    self.writer.write(b"".join(chunk))
                    await self.writer.drain()
                if self.closed:
                    break
        except (ConnectionError, OSError, RuntimeError):
            self.close(abort=True)
        finally:
            with contextlib.suppress(Exception):
                self.writer.close()


@dataclass(slots=True)
class _Command:
    result: asyncio.Future[CommandResult]


class ControlServer:
    """The Unix socket server of one running engine (see the module docstring)."""

    def __init__(self, engine: ServedEngine, path: Path, *, info: Callable[[], dict[str, Any]],
                 flush: Callable[[], Awaitable[None]]) -> None:
        self.engine = engine
        self.path = Path(path)
        self.info = info  # engine facts for the hello and `perpdesk status`
        self.flush = flush  # the journal on disk before a console reads it
        self.session = secrets.token_hex(8)  # one engine run
        self.reason = "engine stopped"  # what consoles are told at the stop (set by the runner)
        self.seq = 0
        self.ring: deque[tuple[int, bytes]] = deque()
        self.evicted = 0  # highest sequence number no longer in the ring
        # (seq, encoded Notice) of the last notices of this run, for consoles that resync
        self.notices: deque[tuple[int, Any]] = deque(maxlen=NOTICE_HISTORY)
        self.clients: set[_Client] = set()
        self.results: OrderedDict[str, _Command] = OrderedDict()
        self._lock = asyncio.Lock()  # one command at a time, whichever console sent it
        self._server: asyncio.AbstractServer | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self._handlers: set[asyncio.Task[None]] = set()
        self._inode: int | None = None
        self._lags: deque[float] = deque(maxlen=LAG_WINDOW)  # loop lag samples (s), newest last
        self._lag_task: asyncio.Task[None] | None = None
        self._ticked = 0.0

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        private_runtime_dir()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # we hold the journal's lock: a socket left here is a dead engine's
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path),
                                                       limit=proto.MAX_FRAME)
        os.chmod(self.path, 0o600)
        self._inode = os.lstat(self.path).st_ino
        self._unsubscribe = self.engine.subscribe(self._on_event)
        self._lag_task = asyncio.create_task(self._probe_lag(), name="loop-lag")
        logger.info(f"SERVICE listening on {self.path} (session {self.session})")

    async def stop(self, reason: str) -> None:
        """Tell every console why, give their writers a moment, close everything."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._server is not None:
            self._server.close()
        if self._lag_task is not None:
            self._lag_task.cancel()
        bye = proto.frame({"t": "bye", "reason": reason})
        clients = list(self.clients)
        for client in clients:
            client.send(bye)
            client.closed = True
            client.wake.set()
        writers = [c.task for c in clients if c.task is not None]
        if writers:
            await asyncio.wait(writers, timeout=1.0)
        for client in clients:
            client.writer.transport.abort()
        for task in list(self._handlers):
            task.cancel()
        with contextlib.suppress(OSError):
            if self._inode is not None and os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()
        logger.info(f"SERVICE stopped ({reason}); {len(clients)} console(s) told")

    def status(self) -> dict[str, Any]:
        lag = max(self._lags, default=0.0)
        return {**self.info(), "consoles": len(self.clients), "session": self.session,
                "seq": self.seq, "loop_lag_ms": round(lag * 1000, 1)}

    async def _probe_lag(self) -> None:
        """How late the engine's loop runs a timer (worst of the last 10 s in `status`): what a
        slow or frozen console would cost the engine if it cost anything."""
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(LAG_PROBE_S)
            self._lags.append(max(0.0, loop.time() - start - LAG_PROBE_S))
            if loop.time() - self._ticked >= TICK_S:
                self._ticked = loop.time()
                for client in list(self.clients):  # latest-value: a stuck console holds one
                    client.offer(self.seq, ("tick", ""), _TICK)

    # ------------------------------------------------------------ engine events (never wait)

    def _on_event(self, event: object) -> None:
        if isinstance(event, Candle):
            return  # strategies' input; no pane shows candles
        self.seq += 1
        key = state_key(event)
        if key is not None and not self.clients:
            return  # a state: whoever attaches later gets it in the snapshot
        message: dict[str, Any] = {"t": "ev", "seq": self.seq, "e": encode(event)}
        if isinstance(event, Notice):
            self.notices.append((self.seq, message["e"]))
        if isinstance(event, PositionSnapshot):
            tp, sl = self.engine.tp_sl(event.symbol, event.pos_side)
            message["tpsl"] = [encode(tp), encode(sl)]
        payload = proto.frame(message)
        if key is None:
            self.ring.append((self.seq, payload))
            if len(self.ring) > RING:
                self.evicted = self.ring.popleft()[0]
        for client in list(self.clients):
            client.offer(self.seq, key, payload)

    def snapshot(self) -> dict[str, Any]:
        e = self.engine
        positions = []
        for snap in e.positions():
            tp, sl = e.tp_sl(snap.symbol, snap.pos_side)
            positions.append({"p": encode(snap), "tpsl": [encode(tp), encode(sl)]})
        marks = {}
        for symbol in e.instruments:
            mark = e.mark(symbol)
            if mark is not None:
                marks[symbol] = encode(mark)
        return {
            "instruments": [encode(i) for i in e.instruments.values()],
            "positions": positions,
            "account": encode(e.account()),
            "marks": marks,
            "links": {stream: state.value for stream, state in e.links().items()},
            "risk": encode(e.risk_status()),
            "read_only": e.read_only,
            # what the venue can do (1.2): the attached console offers what the in-process one does
            "capabilities": encode(capabilities_of(e)),
            "notices": [[seq, notice] for seq, notice in self.notices],
        }

    # ------------------------------------------------------------ connections

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        try:
            await self._serve(reader, writer)
        except (ConnectionError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                ValueError):
            pass  # a console that went away or spoke nonsense: only that connection ends
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - never the engine's problem
            logger.exception("SERVICE connection failed")
        finally:
            if task is not None:
                self._handlers.discard(task)
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        uid = peer_uid(sock)
        raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        pid = struct.unpack("3i", raw)[0]
        if uid != os.geteuid():
            logger.warning(f"SERVICE refused a connection from uid {uid} (pid {pid}): not this user")
            writer.write(proto.frame({"t": "refused", "v": proto.PROTOCOL_VERSION,
                                      "reason": f"uid {uid} may not attach to an engine of uid {os.geteuid()}"}))
            await writer.drain()
            return
        line = await asyncio.wait_for(reader.readline(), proto.HELLO_TIMEOUT_S)
        hello = proto.parse(line)
        if hello.get("t") != "hello":
            return
        refusal = proto.version_refusal(hello.get("v"), we_are="engine")
        role = hello.get("role")
        if refusal is None and role not in proto.ROLES:
            refusal = f"unknown role {role!r} (one of {', '.join(proto.ROLES)})"
        if refusal is not None:
            writer.write(proto.frame({"t": "refused", "v": proto.PROTOCOL_VERSION, "reason": refusal}))
            await writer.drain()
            return
        if role == proto.ROLE_STATUS:
            writer.write(proto.frame({"t": "status", "v": proto.PROTOCOL_VERSION,
                                      "status": self.status()}))
            await writer.drain()
            return
        client = _Client(self, writer, str(role), pid)
        self._welcome(client, hello)  # no await from the snapshot to the registration
        client.task = asyncio.create_task(client.run_writer(), name=f"console-{pid}")
        logger.info(f"SERVICE console attached: pid {pid}, {role}")
        try:
            while not client.closed:
                line = await reader.readline()
                if not line:
                    break
                try:
                    message = proto.parse(line)
                except ValueError:
                    continue
                kind = message.get("t")
                if kind == "cmd":
                    self._spawn(self._command(client, message))
                elif kind == "call":
                    self._spawn(self._call(client, message))
        finally:
            client.close()
            logger.info(f"SERVICE console detached: pid {pid}")

    def _spawn(self, work: Awaitable[None]) -> None:
        task: asyncio.Task[None] = asyncio.ensure_future(work)
        self._handlers.add(task)
        task.add_done_callback(self._handlers.discard)

    def _welcome(self, client: _Client, hello: dict[str, Any]) -> None:
        """hello, snapshot, then the ordered events the console missed (when it can resume)."""
        last = hello.get("seq")
        resumed = (hello.get("session") == self.session and isinstance(last, int)
                   and self.evicted <= last <= self.seq)
        client.send(proto.frame({"t": "hello", "v": proto.PROTOCOL_VERSION, "session": self.session,
                                 "role": client.role, "engine": self.info()}))
        client.send(proto.frame({"t": "snapshot", "seq": self.seq, "resumed": resumed,
                                 "state": self.snapshot()}))
        if resumed:
            assert isinstance(last, int)
            for seq, payload in self.ring:
                if seq > last:
                    client.control.append(payload)
        self.clients.add(client)

    # ------------------------------------------------------------ commands and calls

    async def _command(self, client: _Client, message: dict[str, Any]) -> None:
        cid = message.get("id")
        if not isinstance(cid, str) or not 0 < len(cid) <= ID_MAX:
            return  # nothing to answer to
        if client.read_only:
            result = CommandResult(False, "read-only console: the engine accepts no command from it")
        else:
            entry = self.results.get(cid)
            if entry is None:
                entry = _Command(asyncio.get_running_loop().create_future())
                self.results[cid] = entry
                while len(self.results) > RESULTS:
                    self.results.popitem(last=False)
                self._spawn(self._execute(message, entry))
            else:
                logger.info(f"SERVICE command {cid} resent: answering with its first result")
            result = await asyncio.shield(entry.result)
        client.send(proto.frame({"t": "result", "id": cid, "r": encode(result)}))

    async def _execute(self, message: dict[str, Any], entry: _Command) -> None:
        try:
            command = decode(message.get("cmd"))
            if not isinstance(command, Command):
                raise WireError(f"{type(command).__name__} is not a command")
        except WireError as exc:
            entry.result.set_result(CommandResult(False, f"command not understood: {exc}"))
            return
        try:
            async with self._lock:
                changed = self._changed(command, message.get("expect"))
                result = (CommandResult(False, changed) if changed is not None
                          else await self.engine.submit(command))
        except Exception as exc:  # noqa: BLE001 - the console gets an answer whatever happened
            logger.exception("SERVICE command failed")
            result = CommandResult(False, f"command failed: {exc}")
        entry.result.set_result(result)

    def _changed(self, command: Command, expect: Any) -> str | None:
        """Why the confirmed position facts no longer hold (None: they do, or none were sent)."""
        if not isinstance(expect, list):
            return None
        now = {(p.symbol, p.pos_side.value): position_facts(p) for p in self.engine.positions()}
        shown = {(f[0], f[1]): f for f in expect if isinstance(f, list) and len(f) == 5}
        if isinstance(command, CloseAll):
            keys = set(now) | set(shown)
        elif isinstance(command, (ClosePosition, SetTpSl)):
            keys = {(command.symbol, command.pos_side.value)}
        else:
            return None
        for key in sorted(keys):
            if now.get(key) != shown.get(key):
                cur = now.get(key)
                state = f"now {cur[3]} {cur[4]} ct" if cur is not None else "now flat"
                return (f"{key[0]} {key[1]} changed since this console asked ({state}): "
                        "nothing sent; confirm again")
        return None

    async def _call(self, client: _Client, message: dict[str, Any]) -> None:
        cid, method = message.get("id"), message.get("m")
        reply: dict[str, Any] = {"t": "reply", "id": cid}
        try:
            if method == "reconcile":
                reply["value"] = encode(await self.engine.reconcile())
            elif method == "flush":
                await self.flush()
                reply["value"] = None
            elif method == "status":
                reply["value"] = self.status()
            else:
                raise ValueError(f"unknown call {method!r}")
            reply["ok"] = True
        except Exception as exc:  # noqa: BLE001 - an answer, always
            reply.update(ok=False, error=getattr(exc, "message", None) or str(exc) or type(exc).__name__)
        client.send(proto.frame(reply))
