"""The simulator keeps its exchange across restarts, and a journal belongs to one account.

Embedded: a restart of the stack with the same journal folder finds the same positions, cash and
uid on the exchange and writes no close row. Standalone: ``perpdesk sim --state FILE`` continues
from FILE, ``--fresh`` starts anew with a new account uid. A journal bound to one account refuses
another (start and reconcile), with exit 2 and one line naming both.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.events import PlaceOrder
from core.journal import read_fills, read_trades
from core.journal.binding import ACCOUNT_FILE, AccountId, JournalAccountError, bind_journal, read_binding
from core.model import OrderSide
from core.reconcile.command import _reconcile_settings
from core.service.runner import SIM_STATE_FILE, build_stack, run_headless
from core.sim import persist
from core.sim.server import SimServer
from tests.helpers.engine_helpers import BTC, control, wait_for
from tests.helpers.okx_raw import data
from tests.helpers.sim_cli import _start_cli, _stop_cli
from tests.helpers.sim_state import _nan_cash, _settings, _spoil

pytestmark = pytest.mark.timeout(120)
PERPDESK = Path(sys.executable).with_name("perpdesk")
BTC_ID, ETH_ID = "BTC-USDT-SWAP", "ETH-USDT-SWAP"


async def _exchange(sim: Any) -> dict[str, Any]:
    return (await control(sim, "/sim/v1/state"))[0]["accounts"][0]  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- embedded


async def test_embedded_restart_keeps_the_exchange_and_writes_no_close(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with build_stack(settings) as stack:
        res = await stack.engine.submit(PlaceOrder(BTC, OrderSide.SELL, D("3")))
        assert res.ok, res
        await wait_for(lambda: len(stack.engine.positions()) == 1, what="position")
        before = await _exchange(stack.sim)
    assert (settings.journal.dir / SIM_STATE_FILE).is_file()
    assert oct((settings.journal.dir / SIM_STATE_FILE).stat().st_mode & 0o777) == "0o600"

    async with build_stack(settings) as stack:
        after = await _exchange(stack.sim)
        await wait_for(lambda: len(stack.engine.positions()) == 1, what="position adopted again")
        (pos,) = stack.engine.positions()
        assert pos.contracts == D("3")
    assert after["uid"] == before["uid"]
    assert [(p["posId"], p["pos"], p["avgPx"]) for p in after["positions"]] == \
        [(p["posId"], p["pos"], p["avgPx"]) for p in before["positions"]] == [(before["positions"][0]["posId"], "-3",
                                                                               before["positions"][0]["avgPx"])]
    for key in ("totalEq", "availEq"):
        assert after["balance"][key] == before["balance"][key]
    assert after["balance"]["details"][0]["cashBal"] == before["balance"]["details"][0]["cashBal"]
    assert read_trades(settings.journal.dir) == []  # no `external` close of a position still open
    assert len(read_fills(settings.journal.dir)) == 1
    assert read_binding(settings.journal.dir) == AccountId("sim", before["uid"])


def test_embedded_simulator_started_anew_is_another_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The state file removed: a new simulator, a new uid; the journal refuses it (exit 2, one line)."""
    settings = _settings(tmp_path)
    assert run_headless(settings, 0.5) == 0
    uid = read_binding(settings.journal.dir)
    assert uid is not None and uid.venue == "sim"
    (settings.journal.dir / SIM_STATE_FILE).unlink()
    files = sorted(p.name for p in settings.journal.dir.iterdir())
    capsys.readouterr()
    assert run_headless(settings, 0.5) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    (line,) = err
    assert f"sim account uid {uid.uid}" in line and "[journal] dir" in line
    other = re.search(r"this run is on sim account uid (\d+)", line)
    assert other is not None and other.group(1) != uid.uid
    assert read_binding(settings.journal.dir) == uid  # the record is not rewritten
    # nothing of the other account was journaled (only its simulator's state file is new)
    assert sorted(p.name for p in settings.journal.dir.iterdir()) == sorted([*files, SIM_STATE_FILE])


def test_a_journal_with_rows_and_no_account_record_is_refused_not_bound_anew(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """account.json deleted (and the simulator started anew: another account): the start refuses
    with one line and exit 2 instead of binding the folder to the new account and writing the old
    account's open position as an ``external`` close with made-up PnL."""
    import asyncio

    settings = _settings(tmp_path)

    async def open_one() -> None:
        async with build_stack(settings) as stack:
            assert (await stack.engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("2")))).ok
            await wait_for(lambda: len(stack.engine.positions()) == 1, what="position")
    asyncio.run(open_one())
    assert len(read_fills(settings.journal.dir)) == 1
    (settings.journal.dir / ACCOUNT_FILE).unlink()
    (settings.journal.dir / SIM_STATE_FILE).unlink()
    capsys.readouterr()
    for _ in range(2):  # and again: the refusal records nothing that would let a second start in
        assert run_headless(settings, 0.5) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1, err
        assert ACCOUNT_FILE in err[0] and "holds rows" in err[0] and "[journal] dir" in err[0]
        assert read_binding(settings.journal.dir) is None
        assert read_trades(settings.journal.dir) == []  # no made-up `external` close


# ---------------------------------------------------------------------- the state file itself


async def _busy(srv: SimServer) -> None:
    """Something in every list: positions cross and isolated, a closed life, funding, a resting
    order with attached TP/SL, a live algo, candles."""
    mkt = {"ordType": "market", "tdMode": "cross"}
    await data(srv, "POST", "trade/order", body={**mkt, "instId": BTC_ID, "side": "buy", "sz": "2", "clOrdId": "e1"})
    await data(srv, "POST", "account/set-leverage", body={"instId": ETH_ID, "mgnMode": "isolated", "lever": "5"})
    await data(srv, "POST", "trade/order", body={**mkt, "instId": ETH_ID, "side": "sell", "sz": "3",
                                                 "tdMode": "isolated"})
    await data(srv, "POST", "trade/order", body={**mkt, "instId": "SOL-USDT-SWAP", "side": "buy", "sz": "5"})
    await data(srv, "POST", "trade/order", body={**mkt, "instId": "SOL-USDT-SWAP", "side": "sell", "sz": "5"})
    srv.settle_funding(BTC_ID, D("0.0001"))
    srv.settle_funding(ETH_ID, D("-0.00013"))
    await data(srv, "POST", "trade/order", body={"instId": BTC_ID, "side": "buy", "ordType": "limit", "px": "50000",
                                                 "tdMode": "cross", "sz": "1", "clOrdId": "rest1",
                                                 "attachAlgoOrds": [{"attachAlgoClOrdId": "tp2",
                                                                     "tpTriggerPx": "70000",
                                                                     "slTriggerPx": "45000"}]})
    await data(srv, "POST", "trade/order-algo", body={"instId": BTC_ID, "side": "sell", "ordType": "conditional",
                                                      "tdMode": "cross", "sz": "1", "reduceOnly": True,
                                                      "slTriggerPx": "50000", "slOrdPx": "-1"})
    srv.set_price(BTC_ID, D("60123.4"))
    await data(srv, "GET", "market/candles", {"instId": BTC_ID, "bar": "1m"})  # candles generated and kept


def _comparable(srv: SimServer) -> dict[str, Any]:
    d = persist.dump(srv)
    d.pop("ids")  # resumes at max(saved counter, the clock's base): compared separately
    return d


async def test_state_file_round_trip_is_exact(tmp_path: Path) -> None:
    path = tmp_path / "ex.json"
    srv = SimServer(speed=0, state_path=path)
    await srv.start()
    try:
        await _busy(srv)
        srv.account.cash += D("0.000000001000")  # trailing zeros: an exact Decimal, kept as such
    finally:
        await srv.stop()
    saved = _comparable(srv)
    ids = srv.exchange.ids.last

    again = SimServer(speed=0, state_path=path)
    assert again.resumed and again.account.uid == srv.account.uid
    assert _comparable(again) == saved
    assert str(again.account.cash) == str(srv.account.cash) and str(again.account.cash).endswith("1000")
    assert again.exchange.ids.last >= ids and int(again.exchange.ids.next()) > ids
    # the price paths go on from where they were (same RNG state), not from the seed
    assert again.market.step(3600.0) == srv.market.step(3600.0)
    await again.start()
    try:
        pending = await data(again, "GET", "trade/orders-pending")
        assert [o["clOrdId"] for o in pending] == ["rest1"] and pending[0]["attachAlgoOrds"][0]["tpTriggerPx"] == "70000"
        (algo,) = await data(again, "GET", "trade/orders-algo-pending", {"ordType": "conditional"})
        assert algo["slTriggerPx"] == "50000"
        hist = await data(again, "GET", "account/positions-history")
        assert [h["instId"] for h in hist] == ["SOL-USDT-SWAP"]
        bills = await data(again, "GET", "account/bills", {"type": "8"})
        assert {b["instId"] for b in bills} == {BTC_ID, ETH_ID}
        # the isolated position's funding is still in its margin, and trading goes on
        (eth,) = await data(again, "GET", "account/positions", {"instId": ETH_ID})
        assert D(eth["fundingFee"]) != 0 and eth["mgnMode"] == "isolated"
        (o,) = await data(again, "POST", "trade/order", body={"instId": BTC_ID, "side": "sell", "ordType": "market",
                                                              "tdMode": "cross", "sz": "2"})
        assert int(o["ordId"]) > ids
    finally:
        await again.stop()


async def test_cached_encoding_equals_the_plain_one(tmp_path: Path) -> None:
    """The encoder reuses finished records; what it writes must be what a full encoding gives."""
    srv = SimServer(speed=0)
    await srv.start()
    try:
        enc = persist.Encoder()
        await _busy(srv)
        assert enc.encode(srv) == persist.encode(srv)
        for i in range(20):  # lives opened and closed within the same millisecond, orders, bills
            await data(srv, "POST", "trade/order", body={"instId": BTC_ID, "side": "sell" if i % 2 else "buy",
                                                         "ordType": "market", "tdMode": "cross", "sz": "2"})
        await data(srv, "POST", "trade/cancel-order", body={"instId": BTC_ID, "clOrdId": "rest1"})
        srv.settle_funding(ETH_ID, D("0.0002"))
        assert enc.encode(srv) == persist.encode(srv)
        assert enc.encode(srv) == persist.encode(srv)
    finally:
        await srv.stop()


def test_fresh_ignores_the_file_and_a_bad_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ex.json"
    first = SimServer(speed=0, state_path=path)
    first.account.cash = D("1234.5")
    first.save()
    fresh = SimServer(speed=0, state_path=path, fresh=True)
    assert not fresh.resumed and fresh.account.uid != first.account.uid and fresh.account.cash == D("10000")
    assert SimServer(speed=0, state_path=path).account.cash == D("1234.5")  # not overwritten until saved
    path.write_text("{not json")
    with pytest.raises(persist.SimStateError, match="--fresh"):
        SimServer(speed=0, state_path=path)
    path.write_text(json.dumps({"format": 99}))
    with pytest.raises(persist.SimStateError, match="format"):
        SimServer(speed=0, state_path=path)


def test_write_is_atomic_and_private(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "ex.json"
    srv = SimServer(speed=0, state_path=path)
    assert srv.save() and not srv.save()  # nothing changed: nothing written
    assert sorted(os.listdir(path.parent)) == ["ex.json"]  # no temporary file left behind
    assert path.stat().st_mode & 0o777 == 0o600


# ---------------------------------------------------------------------- standalone CLI


def _ctl(url: str, path: str, body: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(url + path, data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Content-Type": "application/json"}, method="POST" if body else "GET")
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())["data"][0]


def test_standalone_state_and_fresh(tmp_path: Path) -> None:
    state = tmp_path / "exchange.json"
    proc, url = _start_cli(tmp_path, "--state", str(state))
    try:
        _ctl(url, "/sim/v1/price", {"instId": BTC_ID, "px": "61234.5"})
        uid = _ctl(url, "/sim/v1/state")["accounts"][0]["uid"]
    finally:
        _stop_cli(proc)
    proc, url = _start_cli(tmp_path, "--state", str(state))
    try:
        st = _ctl(url, "/sim/v1/state")
        assert st["accounts"][0]["uid"] == uid and st["prices"][BTC_ID] == "61234.5"
    finally:
        _stop_cli(proc)
    proc, url = _start_cli(tmp_path, "--state", str(state), "--fresh")
    try:
        st = _ctl(url, "/sim/v1/state")
        assert st["accounts"][0]["uid"] != uid and st["prices"][BTC_ID] == "60000"
    finally:
        _stop_cli(proc)
    assert json.loads(state.read_text())["accounts"][0]["uid"] == st["accounts"][0]["uid"]  # overwritten


# ---------------------------------------------------------------------- one journal, one account


async def test_reconcile_refuses_a_journal_of_another_account(tmp_path: Path) -> None:
    async with SimServer(speed=0) as one, SimServer(speed=0) as two:
        assert one.account.uid != two.account.uid
        settings = _settings(tmp_path)
        settings = replace(settings, exchange=replace(settings.exchange, url=one.url))
        settings.journal.dir.mkdir()
        await _reconcile_settings(settings, None)  # reconcile reads: it checks, it does not record
        assert read_binding(settings.journal.dir) is None
        bind_journal(settings.journal.dir, AccountId("sim", one.account.uid))  # as a first start does
        await _reconcile_settings(settings, None)
        settings = replace(settings, exchange=replace(settings.exchange, url=two.url))
        with pytest.raises(JournalAccountError) as exc:
            await _reconcile_settings(settings, None)
        assert one.account.uid in exc.value.message and two.account.uid in exc.value.message


async def test_a_trade_is_saved_soon_not_only_at_stop(tmp_path: Path) -> None:
    """A crash right after a fill must not lose it: the file has it well before the next interval."""
    path = tmp_path / "ex.json"
    srv = SimServer(speed=0, state_path=path, save_interval_s=60.0)
    await srv.start()
    try:
        await data(srv, "POST", "trade/order", body={"instId": BTC_ID, "side": "buy", "ordType": "market",
                                                     "tdMode": "cross", "sz": "1"})

        def saved_fills() -> int:
            return len(json.loads(path.read_text())["accounts"][0]["fills"])
        await wait_for(lambda: saved_fills() == 1, what="the fill in the state file", timeout=5.0)
    finally:
        await srv.stop()


# ---------------------------------------------------------------------- a state file that is no money


SPOILS: dict[str, Any] = {
    "accounts[0].cash": lambda st: st["accounts"][0].update(cash="NaN"),
    "accounts[0].positions[0].avg_px": lambda st: st["accounts"][0]["positions"][0].update(avg_px="Infinity"),
    "accounts[0].fills[0].fee": lambda st: st["accounts"][0]["fills"][0].update(fee="sNaN"),
    "accounts[0].bills[0].bal_chg": lambda st: st["accounts"][0]["bills"][0].update(bal_chg="1e999999"),
    f"prices.{BTC_ID}": lambda st: st["prices"].update({BTC_ID: "-Infinity"}),
    f"accounts[0].levers[{ETH_ID} isolated]": lambda st: st["accounts"][0]["levers"][0].__setitem__(2, "１"),
    f"candles.minutes.{BTC_ID}[0].c": lambda st: st["candles"]["minutes"][BTC_ID][0].__setitem__(4, "NaN"),
}


@pytest.mark.parametrize("field", list(SPOILS))
async def test_a_state_file_with_no_finite_number_is_refused_naming_the_field(tmp_path: Path, field: str) -> None:
    path = tmp_path / "ex.json"
    srv = SimServer(speed=0, state_path=path)
    await srv.start()
    try:
        await _busy(srv)
    finally:
        await srv.stop()
    _spoil(path, SPOILS[field])
    with pytest.raises(persist.SimStateError) as exc:
        SimServer(speed=0, state_path=path)
    assert str(path) in str(exc.value) and f"field {field} is" in str(exc.value), exc.value


def test_standalone_refuses_a_nan_state_file_with_one_line(tmp_path: Path) -> None:
    state = tmp_path / "exchange.json"
    _nan_cash(state)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERPDESK_")}
    proc = subprocess.run([str(PERPDESK), "sim", "--port", "0", "--speed", "0", "--state", str(state)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(state) in lines[0] and "accounts[0].cash" in lines[0], proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


# ---------------------------------------------------------------------- SIGKILL after answered orders

async def _trade_and_kill(url: str, proc: subprocess.Popen[str]) -> tuple[list[str], str]:
    """Orders an outside ccxt client sees answered: a leverage change, 24 market fills (16 buys,
    8 sells) one after another and 16 at once (as many buys as sells), a limit order placed then
    canceled; the simulator is killed (SIGKILL) the moment the
    last answer is in. Returns the filled ordIds and the canceled one."""
    import ccxt.async_support as ccxt_async

    from core.sim.ccxt_client import okx_client

    ex = okx_client(ccxt_async.okx, url)
    try:
        await ex.load_markets()
        sym = "BTC/USDT:USDT"
        await ex.set_leverage(7, sym, {"mgnMode": "cross"})
        filled = [(await ex.create_order(sym, "market", "buy" if i % 3 else "sell", 1))["id"] for i in range(24)]
        burst = await asyncio.gather(*(ex.create_order(sym, "market", "buy" if i % 2 else "sell", 1)
                                       for i in range(16)))  # concurrent: answers share a sync
        filled += [o["id"] for o in burst]
        resting = await ex.create_order(sym, "limit", "buy", 1, 40000)
        await ex.cancel_order(resting["id"], sym)
        proc.kill()  # SIGKILL: no handler, no save at stop
        return filled, str(resting["id"])
    finally:
        await ex.close()


def test_sigkill_after_answered_orders_loses_none_of_them(tmp_path: Path) -> None:
    """Every answer leaves only once its change is on disk: a SIGKILL right after the last answer
    finds every answered fill, the cancel and the leverage at the next start."""
    state = tmp_path / "exchange.json"
    proc, url = _start_cli(tmp_path, "--state", str(state))
    try:
        filled, canceled = asyncio.run(_trade_and_kill(url, proc))
    finally:
        proc.kill()
        proc.wait(timeout=30)
    proc, url = _start_cli(tmp_path, "--state", str(state))
    try:
        st = _ctl(url, "/sim/v1/state")
        (acct,) = st["accounts"]
        assert acct["fills"] == "40" and acct["openOrders"] == []
        assert [(p["pos"], p["lever"]) for p in acct["positions"]] == [("8", "7")]
        saved = json.loads(state.read_text())
        orders = {o["ord_id"]: o for o in saved["accounts"][0]["orders"]}
        assert all(orders[i]["state"] == "filled" for i in filled) and orders[canceled]["state"] == "canceled"
        fills = saved["accounts"][0]["fills"]
        assert D(saved["accounts"][0]["cash"]) == D(10000) + sum(D(f["fee"]) + D(f["fill_pnl"]) for f in fills)
        assert not state.with_name(state.name + ".log").exists()  # the start's full save took the log in
    finally:
        _stop_cli(proc)


async def _log_only(path: Path) -> SimServer:
    """A started simulator saving to ``path`` whose background full save is off: after the
    start's save, only its change log holds what follows."""
    srv = SimServer(speed=0, state_path=path, save_interval_s=3600)
    await srv.start()
    assert srv._saver is not None
    srv._saver.cancel()
    srv._saver = None
    return srv


def _told(srv: SimServer) -> dict[str, Any]:
    """What the change log keeps: everything but the candles and the random walk's state."""
    d = persist.dump(srv)
    for k in ("rng", "candles", "log_seq", "ids"):
        d.pop(k)
    return d


async def test_the_change_log_alone_brings_back_what_clients_were_told(tmp_path: Path) -> None:
    """No full save after the start's: the next start rebuilds the exchange from the log's lines
    (each request's changes only), exactly; a torn last line is ignored."""
    path = tmp_path / "ex.json"
    srv = await _log_only(path)
    try:
        await _busy(srv)
        await control(srv, "/sim/v1/price", {"instId": BTC_ID, "px": "61000"})  # a request after the direct calls
        await data(srv, "POST", "trade/close-position", body={"instId": ETH_ID, "mgnMode": "isolated"})
        log = path.with_name(path.name + ".log")
        assert json.loads(path.read_text())["accounts"][0]["fills"] == [] and log.stat().st_size > 0
        with log.open("ab") as f:
            f.write(b'{"seq": 99999, "ids": 1, "prices": {"BTC-USDT-SWAP": "1"')  # a write a crash cut short
        again = SimServer(speed=0, state_path=path)
        assert _told(again) == _told(srv)
        assert again.exchange.ids.last >= srv.exchange.ids.last
        log.write_bytes(b'{"seq": 1}\nnot json\n{"seq": 2}\n')
        with pytest.raises(persist.SimStateError, match=re.escape(str(log))):
            SimServer(speed=0, state_path=path)
        log.unlink()
    finally:
        await srv.stop()


async def test_a_fill_of_a_price_move_is_logged_before_anyone_can_ask(tmp_path: Path) -> None:
    """A stop fired by the market (no request, nobody subscribed) is on disk at once: a client's
    next query could tell it, so a crash must not lose it."""
    path = tmp_path / "ex.json"
    srv = await _log_only(path)
    try:
        await data(srv, "POST", "trade/order", body={"instId": BTC_ID, "side": "buy", "ordType": "market",
                                                     "tdMode": "cross", "sz": "2"})
        await data(srv, "POST", "trade/order-algo", body={"instId": BTC_ID, "side": "sell", "ordType": "conditional",
                                                          "tdMode": "cross", "sz": "2", "reduceOnly": True,
                                                          "slTriggerPx": "59000"})
        srv.set_price(BTC_ID, D("58900"))  # what a market tick does
        assert not srv.account.positions[(BTC_ID, "cross", "net")].pos
        again = SimServer(speed=0, state_path=path)
        assert len(again.account.fills) == 2 and not again.account.positions[(BTC_ID, "cross", "net")].pos
        assert again.account.cash == srv.account.cash
    finally:
        await srv.stop()


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux unavailable")
def test_console_start_refuses_a_nan_state_file_with_one_line(tmp_path: Path) -> None:
    """The console (a real terminal, in tmux) on the embedded simulator: the start ends with the
    one line naming the file and the field, exit 2, the terminal given back."""
    from tests.helpers.tmux import Tmux, free_port

    (tmp_path / "config.toml").write_text('[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
                                          f'[sim]\nport = {free_port()}\nspeed = 1\n[strategy]\nname = "none"\n')
    (tmp_path / "journal").mkdir()
    _nan_cash(tmp_path / "journal" / SIM_STATE_FILE)
    tmux = Tmux(f"{PERPDESK} --config config.toml; echo $? > exit.txt; sleep 30", tmp_path, width=400)
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "exit.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert (tmp_path / "exit.txt").read_text().strip() == "2"
        lines = [line for line in tmux.screen().splitlines() if line.strip()]  # the terminal once given back
        assert len(lines) == 1 and SIM_STATE_FILE in lines[0] and "accounts[0].cash" in lines[0], lines
    finally:
        tmux.kill()


def test_a_full_save_cuts_the_log_back_to_the_lines_written_after_it(tmp_path: Path) -> None:
    """The background save encodes at one moment and writes later: lines appended meanwhile stay
    in the log (and are applied at load), the ones it holds go."""
    path = tmp_path / "ex.json"
    log = path.with_name(path.name + ".log")
    srv = SimServer(speed=0, state_path=path)
    assert srv.changes is not None
    srv.save()
    mkt = {"instId": BTC_ID, "ordType": "market", "tdMode": "cross", "sz": "1"}
    srv.exchange.place_order(srv.account, {**mkt, "side": "buy"})
    srv.keep()
    _, held = srv.changes.mark()  # what a full save encoded now would hold...
    payload = persist.encode(srv)
    srv.exchange.place_order(srv.account, {**mkt, "side": "buy"})
    srv.keep()  # ...and a line written while it was being written
    persist.write(path, payload)
    srv.changes.cut(held)
    assert len(log.read_bytes().splitlines()) == 1
    again = SimServer(speed=0, state_path=path)
    assert len(again.account.fills) == 2 and again.account.cash == srv.account.cash
    srv.save()
    assert not log.exists() and len(SimServer(speed=0, state_path=path).account.fills) == 2
