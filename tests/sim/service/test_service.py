"""Issue 22: `perpdesk serve` and consoles attached through its real control socket.

The engine is a real `perpdesk serve` process on the embedded simulator; the consoles are
RemoteEngine objects (the EngineView `perpdesk attach` drives the Textual app with) or raw
clients that speak the protocol frame by frame (docs/service.md).
"""
from __future__ import annotations

import asyncio
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from decimal import Decimal as D
from pathlib import Path

import pytest

from console.remote import EngineUnavailable, RemoteEngine
from core.events import ClosePosition, CommandResult, Notice, PlaceOrder, PositionGone
from core.journal import read_fills, read_trades
from core.model import CloseResult, OrderSide, PosSide
from core.service import protocol as proto
from core.service.codec import decode, encode
from core.service.server import peer_uid, position_facts
from core.service.view import JournalView, ProtectionView
from tests.helpers.engine_helpers import BTC, wait_for
from tests.helpers.lock_helpers import PERPDESK, embedded_config, start_engine, start_serve, stop
from tests.helpers.service_helpers import (
    RawClient,
    _attached,
    _Console,
    _order,
    _safe,
    close_remotes,
    trade_then_lose_the_engine,
)
from tests.helpers.tmux import free_port

pytestmark = pytest.mark.timeout(120)


async def test_two_consoles_a_close_from_one_appears_in_the_other(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path, port=free_port())  # reconcile reaches the embedded simulator
    jdir = tmp_path / "journal"
    proc, path, env = start_serve(tmp_path, cfg)
    a = b = None
    try:
        a = await _attached(path)
        b = await _attached(path)
        seen: list[object] = []
        b.subscribe(seen.append)
        assert BTC in a.instruments and a.links()

        result = await a.submit(PlaceOrder(BTC, OrderSide.BUY, D("5")))
        assert result.ok, result
        # The fill opens the life at once; the exchange's position push (leverage, liq price)
        # follows, so the two consoles agree once both have seen it.
        await wait_for(lambda: len(b.positions()) == 1 and a.positions() == b.positions()
                       and b.positions()[0].leverage > 0, 20, "the same position in both")
        snap = b.positions()[0]
        assert snap.contracts == D("5") and snap.leverage == D("10")
        mark = b.mark(BTC)
        assert mark is not None  # the `c` dialog's estimate: price PnL at the latest mark, pro rata
        whole = (mark - snap.entry_price) * snap.contracts * snap.contract_size
        assert b.estimate_close_pnl(BTC, PosSide.NET, D("5")) == whole
        assert b.estimate_close_pnl(BTC, PosSide.NET, D("2")) == whole * 2 / 5

        result = await a.submit(ClosePosition(BTC, PosSide.NET, position_id=snap.position_id))
        assert result.ok, result
        await wait_for(lambda: any(isinstance(e, CloseResult) for e in seen)
                       and any(isinstance(e, PositionGone) for e in seen), 20, "the close in console b")
        assert b.positions() == []
        await wait_for(lambda: len(_safe(read_trades, jdir)) == 1, 20, "the close row")
        assert [r["reason"] for r in read_trades(jdir)] == ["manual"]
        assert isinstance(b, JournalView) and isinstance(b, ProtectionView)
        page = await b.history_pager("closes").page(0)  # the `h` screen reads the journal itself
        assert [item.close.reason.value for item in page.items] == ["manual"]
        report = await b.reconcile()  # through the socket, as the console's `r` does
        assert report.ok, report.lines()
        rec = await asyncio.to_thread(subprocess.run, [str(PERPDESK), "--config", str(cfg), "reconcile"],
                                      cwd=tmp_path, capture_output=True, text=True, timeout=60)
        assert rec.returncode == 0, rec.stdout + rec.stderr
    finally:
        await close_remotes(a, b)
        assert stop(proc) == 0
    assert len(read_trades(jdir)) == 1


async def test_read_only_console_command_is_refused_by_the_engine(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    proc, path, _ = start_serve(tmp_path, cfg)
    try:
        raw = await RawClient.open(path, proto.ROLE_READ_ONLY)
        hello = await raw.next()
        assert hello["t"] == "hello" and hello["role"] == proto.ROLE_READ_ONLY
        assert (await raw.next())["t"] == "snapshot"
        raw.command("ro-1", PlaceOrder(BTC, OrderSide.BUY, D("5")))
        answer = await raw.next("result")
        result = decode(answer["r"], CommandResult)
        assert answer["id"] == "ro-1" and not result.ok and "read-only" in result.message
        await asyncio.sleep(1.0)
        assert _safe(read_fills, tmp_path / "journal") == []  # nothing reached the exchange
        await raw.close()
    finally:
        assert stop(proc) == 0


async def test_a_resent_command_id_runs_once_even_across_a_reconnect(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    proc, path, _ = start_serve(tmp_path, cfg)
    try:
        raw = await RawClient.open(path)
        hello = await raw.next("hello")
        snapshot = await raw.next("snapshot")
        order = PlaceOrder(BTC, OrderSide.BUY, D("3"))
        raw.command("once-1", order)
        await raw.writer.drain()
        await raw.close()  # gone before the answer: the console resends after reconnecting

        again = await RawClient.open(path, session=hello["session"], seq=snapshot["seq"])
        assert (await again.next("snapshot"))["resumed"] is True
        again.command("once-1", order)
        again.command("once-1", order)
        first, second = await again.next("result"), await again.next("result")
        assert first == second and decode(first["r"], CommandResult).ok
        await wait_for(lambda: len(_safe(read_fills, jdir)) >= 1, 20, "the fill")
        await asyncio.sleep(1.5)
        fills = read_fills(jdir)
        assert len(fills) == 1 and fills[0]["contracts"] == D("3")
        await again.close()
    finally:
        assert stop(proc) == 0


async def test_another_protocol_major_is_refused_naming_the_side_to_upgrade(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    proc, path, _ = start_serve(tmp_path, cfg)
    try:
        raw = await RawClient.open(path, version="2.0")
        refused = await raw.next()
        assert refused["t"] == "refused" and "upgrade the engine" in refused["reason"]
        await raw.close()
        raw = await RawClient.open(path, version="0.9")
        assert "upgrade the console" in (await raw.next())["reason"]
        await raw.close()
    finally:
        assert stop(proc) == 0


async def test_attach_without_an_engine_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(EngineUnavailable, match="no engine answers"):
        await RemoteEngine(tmp_path / "none.sock").connect(timeout=2)
    cfg = embedded_config(tmp_path)
    out = subprocess.run([str(PERPDESK), "--config", str(cfg), "attach"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert "no engine runs on journal" in out.stderr and "serve" in out.stderr


_PEER_SCRIPT = """
import json, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as exc:
    print("CONNECT", type(exc).__name__); sys.exit(0)
try:
    s.sendall(json.dumps({"t": "hello", "v": "1.0", "role": "console"}).encode() + b"\\n")
except OSError:
    pass  # the engine may have answered and closed before reading a byte
s.settimeout(10)
print("GOT", s.recv(65536).decode().strip())
"""


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("useradd") is None
                    or shutil.which("setpriv") is None, reason="needs root, useradd and setpriv")
async def test_another_user_cannot_connect(tmp_path: Path) -> None:
    cfg = embedded_config(tmp_path)
    run_dir = Path(tempfile.mkdtemp(prefix="pdsvc-"))  # /tmp itself lets another user through
    proc, path, _ = start_serve(tmp_path, cfg, run_dir / "run")
    user = f"pdsvc{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", user],
                   check=True, capture_output=True)
    try:
        uid = pwd.getpwnam(user).pw_uid

        def as_other() -> str:
            out = subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                                  sys.executable, "-I", "-c", _PEER_SCRIPT, str(path)],
                                 capture_output=True, text=True, timeout=30, cwd="/")
            return out.stdout.strip() + out.stderr.strip()

        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
        assert await asyncio.to_thread(as_other) == "CONNECT PermissionError"  # the folder and file
        # with the folder and socket opened up by hand, the engine's own check still refuses
        os.chmod(run_dir, 0o711)
        os.chmod(path.parent, 0o711)
        os.chmod(path, 0o666)
        answer = await asyncio.to_thread(as_other)
        assert answer.startswith("GOT "), answer
        refused = proto.parse(answer[4:].encode())
        assert refused["t"] == "refused" and f"uid {uid} may not attach" in refused["reason"]
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        assert stop(proc) == 0
        shutil.rmtree(run_dir, ignore_errors=True)


def test_peer_uid_is_the_connecting_process_uid() -> None:
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_uid(a) == os.geteuid()


async def test_engine_restarted_under_an_attached_console(tmp_path: Path) -> None:
    """The console reconnects within seconds; the fills made while it was away (by another
    console, on the new engine) reach its panes once; nothing is shown twice."""
    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    proc, path, env = start_serve(tmp_path, cfg)
    a = RemoteEngine(path, backoff=(2.0,))  # slow enough that the other console trades meanwhile
    await a.connect()
    a.start()
    console = _Console(a)
    await console.seed()
    b = None
    try:
        await trade_then_lose_the_engine(a, console, proc)
        assert "SIGTERM" in a.stop_reason

        proc = start_engine(cfg, "serve", env=env, banner="perpdesk serve")
        restarted = asyncio.get_running_loop().time()
        b = await _attached(path)
        await _order(b, OrderSide.SELL, "1")  # closes what is left: a fill and a close row
        await _order(b, OrderSide.BUY, "3")
        await wait_for(lambda: a.connected, 10, "the console to reconnect")
        assert asyncio.get_running_loop().time() - restarted < 5
        await _order(a, OrderSide.SELL, "3")  # and trades again from the reconnected console
        await console.settle(jdir, fills=5)
    finally:
        await close_remotes(a, b)
        assert stop(proc) == 0
    console.assert_shows_the_journal(jdir, closes=3)
    assert a.fresh_snapshots == 1 and a.reconnects == 1


async def test_reattach_shows_what_happened_meanwhile_and_kill_9_of_a_console(tmp_path: Path) -> None:
    """A console quits (here: SIGKILLed mid-stream); the engine trades on; a new console's
    panes show the fills made meanwhile, each once."""
    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    proc, path, env = start_serve(tmp_path, cfg)
    script = ("import asyncio, sys\nfrom console.remote import RemoteEngine\n"
              "async def main():\n    r = RemoteEngine(sys.argv[1]); await r.connect(); r.start()\n"
              "    print('attached', flush=True); await asyncio.sleep(600)\nasyncio.run(main())\n")
    victim = subprocess.Popen([sys.executable, "-c", script, str(path)], stdout=subprocess.PIPE, text=True)
    b = c = None
    try:
        assert victim.stdout is not None and victim.stdout.readline().strip() == "attached"
        b = await _attached(path)
        await _order(b, OrderSide.BUY, "2")
        await wait_for(lambda: (b.info and True) and len(_safe(read_fills, jdir)) == 1, 20, "a fill")
        victim.kill()
        victim.wait(10)
        await _order(b, OrderSide.SELL, "2")  # the engine goes on, and so does the other console
        await wait_for(lambda: len(_safe(read_trades, jdir)) == 1, 20, "the close row")
        status = await b.call("status")
        assert status["consoles"] == 1  # the killed console is gone from the engine's list

        c = await _attached(path)
        console = _Console(c)
        await console.seed()
        console.drain()
        assert sorted(console.fills) == sorted(f["fill_id"] for f in read_fills(jdir))
        assert len(console.closes) == 1
    finally:
        victim.kill()
        await close_remotes(b, c)
        assert stop(proc) == 0


async def test_a_close_confirmed_on_a_position_another_console_changed_is_refused(tmp_path: Path) -> None:
    """Console A confirmed "close 4 ct"; console B closes 1 ct before A's command arrives: the
    engine refuses A's close (the facts it showed no longer hold) instead of acting on them."""
    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    proc, path, _ = start_serve(tmp_path, cfg)
    b = None
    try:
        b = await _attached(path)
        await _order(b, OrderSide.BUY, "4")
        await wait_for(lambda: len(b.positions()) == 1, 20, "the position")
        shown = b.positions()[0]
        raw = await RawClient.open(path)  # console A, frame by frame
        await raw.next("snapshot")
        result = await b.submit(ClosePosition(BTC, PosSide.NET, D("1"), shown.position_id))
        assert result.ok, result
        await wait_for(lambda: b.positions() and b.positions()[0].contracts == D("3"), 20, "3 ct left")

        close = ClosePosition(BTC, PosSide.NET, position_id=shown.position_id)
        raw.send({"t": "cmd", "id": "a-1", "cmd": encode(close), "expect": [position_facts(shown)]})
        refused = decode((await raw.next("result"))["r"], CommandResult)
        assert not refused.ok and "changed since this console asked" in refused.message
        assert "now long 3 ct" in refused.message
        await asyncio.sleep(1.0)
        assert b.positions()[0].contracts == D("3")  # nothing was sent

        now = b.positions()[0]  # asked again with what is shown now: it goes
        raw.send({"t": "cmd", "id": "a-2", "cmd": encode(close), "expect": [position_facts(now)]})
        assert decode((await raw.next("result"))["r"], CommandResult).ok
        await wait_for(lambda: not b.positions(), 20, "the position closed")
        await raw.close()
    finally:
        if b is not None:
            await b.close()
        assert stop(proc) == 0
    assert len(read_trades(jdir)) == 2


async def test_status_lists_each_running_engine_once_and_forgets_dead_ones(tmp_path: Path) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    run = tmp_path / "run"
    first, _, env = start_serve(one, embedded_config(one), run)
    second, _, _ = start_serve(two, embedded_config(two), run)
    try:
        (run / "0123456789abcdef.sock").touch()  # not a socket: ignored
        stale = socket.socket(socket.AF_UNIX)
        stale.bind(str(run / "feedfacefeedface.sock"))  # a killed engine's socket: nobody listens
        stale.close()
        out = await asyncio.to_thread(subprocess.run, [str(PERPDESK), "status"], capture_output=True,
                                      text=True, timeout=30, env={**os.environ, **env})
        assert out.returncode == 0, out.stderr
        lines = out.stdout.strip().splitlines()
        assert len(lines) == 2, out.stdout
        for folder, proc in ((one, first), (two, second)):
            (line,) = [x for x in lines if f"{folder / 'journal'} " in x]
            assert f"pid {proc.pid}" in line and " sim " in line and "positions 0" in line
            assert "consoles 0" in line and "equity 10000.00 USDT" in line and "loop lag" in line
        assert not (run / "feedfacefeedface.sock").exists()
    finally:
        assert stop(first) == 0 and stop(second) == 0
    out = await asyncio.to_thread(subprocess.run, [str(PERPDESK), "status"], capture_output=True,
                                  text=True, timeout=30, env={**os.environ, **env})
    assert out.returncode == 0 and out.stdout.startswith("no engine running"), out.stdout


@pytest.mark.parametrize(("argv", "needle"), [
    (["--read-only", "serve"], "--read-only does not apply to `serve`"),
    (["--headless", "attach"], "--headless and --duration do not apply to `attach`"),
    (["attach", "--duration", "5"], "unrecognized arguments"),
])
def test_service_command_lines_that_cannot_run_are_one_line(
        argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]) -> None:
    from console.cli import main

    assert main(argv) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and needle in err, err


async def test_a_console_refuses_an_engine_of_another_major_version(tmp_path: Path) -> None:
    """The other direction of the version check: an engine speaking 2.x (a stand-in socket that
    answers the hello as a newer engine would) is refused by the console in one line."""
    async def newer_engine(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readline()
        writer.write(proto.frame({"t": "hello", "v": "2.0", "session": "s", "engine": {}}))
        await writer.drain()
        writer.close()

    path = tmp_path / "e.sock"
    server = await asyncio.start_unix_server(newer_engine, path=str(path))
    async with server:
        with pytest.raises(EngineUnavailable) as refused:
            await RemoteEngine(path).connect()
    assert "engine speaks 2.0" in refused.value.message and "upgrade the console" in refused.value.message


async def test_a_stopped_engine_is_noticed_and_the_console_resumes_when_it_continues(tmp_path: Path) -> None:
    """The engine ticks every 2 s: a console that hears nothing for 7 s says the engine is lost
    (a hung or SIGSTOPped engine never closes the socket); it resumes once the engine runs again."""
    cfg = embedded_config(tmp_path)
    proc, path, _ = start_serve(tmp_path, cfg)
    remote = None
    try:
        remote = await _attached(path)
        seen: list[object] = []
        remote.subscribe(seen.append)
        proc.send_signal(signal.SIGSTOP)
        await wait_for(lambda: not remote.connected, 15, "the console to notice the stopped engine")
        assert any(isinstance(e, Notice) and "no word from the engine" in e.text for e in seen)
        proc.send_signal(signal.SIGCONT)
        await wait_for(lambda: remote.connected, 20, "the console to reconnect")
        assert remote.fresh_snapshots == 0  # the same run: resumed, nothing to read again
    finally:
        proc.send_signal(signal.SIGCONT)
        await close_remotes(remote)
        assert stop(proc) == 0


async def test_a_command_unanswered_when_the_engine_died_is_never_sent_to_the_next_one(
        tmp_path: Path) -> None:
    """At most once across an engine restart: the console cannot know whether the dead engine
    ran it, so it fails the command with a line saying so instead of sending it again."""
    cfg = embedded_config(tmp_path)
    jdir = tmp_path / "journal"
    proc, path, env = start_serve(tmp_path, cfg)
    remote = None
    try:
        remote = RemoteEngine(path, backoff=(0.5,))
        await remote.connect()
        remote.start()
        proc.send_signal(signal.SIGSTOP)  # it will never read the command
        pending = asyncio.ensure_future(remote.submit(PlaceOrder(BTC, OrderSide.BUY, D("2"))))
        await asyncio.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc = start_engine(cfg, "serve", env=env, banner="perpdesk serve")
        result = await asyncio.wait_for(pending, 30)
        assert not result.ok and "restarted before answering" in result.message
        await asyncio.sleep(1.5)
        assert _safe(read_fills, jdir) == [] and remote.positions() == []
    finally:
        await close_remotes(remote)
        assert stop(proc) in (0, -signal.SIGKILL)


@pytest.mark.parametrize("face", ["okx", "bybit"])
async def test_an_attached_console_offers_what_the_venue_can_do(tmp_path: Path, face: str) -> None:
    """The snapshot carries the venue's capabilities (protocol 1.2): on a Bybit-faced engine the
    attached console shows one Coins column and says a size once, in coins, as the console in the
    engine's own process does; on OKX it keeps contracts and coins."""
    from console.app import build_app
    from console.widgets.positions import PositionsPane
    from core.venue.bybit import BybitVenue
    from core.venue.okx import OkxVenue
    from tests.helpers.console_helpers import screen_text
    from tests.helpers.pilot import settle

    cfg = embedded_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("[sim]\n", f'[sim]\nprotocol = "{face}"\n'))
    venue = BybitVenue if face == "bybit" else OkxVenue
    proc, path, _env = start_serve(tmp_path, cfg)
    remote = None
    try:
        remote = await _attached(path)
        assert remote.capabilities == venue.capabilities
        size = D("0.1") if face == "bybit" else D("10")  # 0.1 BTC either way
        result = await remote.submit(PlaceOrder(BTC, OrderSide.BUY, size))
        assert result.ok, result
        await wait_for(lambda: len(remote.positions()) == 1, 20, "the position in the console")
        app = build_app(remote)
        async with app.run_test(size=(200, 40)) as pilot:
            await pilot.pause()
            pane = app.query_one(PositionsPane)
            shown = [t for t in pane.visible_titles if t in ("Contracts", "Coins")]
            assert shown == (["Coins"] if face == "bybit" else ["Contracts", "Coins"])
            await pilot.press("c")
            await settle(app, pilot)
            text = screen_text(app)
            said = re.search(r"BTC/USDT long  (.+?)\s*│", text)
            assert said is not None, text
            assert re.fullmatch(r"0\.10* BTC" if face == "bybit" else r"10\.0* ct \(0\.10* BTC\)", said[1]), said[1]
            assert (" ct (" in text) is (face == "okx")
            await pilot.press("escape")
    finally:
        await close_remotes(remote)
        assert stop(proc) == 0
