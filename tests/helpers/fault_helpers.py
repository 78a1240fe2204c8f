"""Fault-injection rig on top of tests/helpers/engine_helpers.py.

Why these helpers exist: every fault test must end the same way — nothing lost, nothing doubled,
checked against the exchange's own history (fills-history, positions-history, funding bills) —
and must show that the trader got one clear line about it. Writing those checks once keeps each
test about its fault.

Faults on the wire are injected inside the simulator's push fan-out (``Hub.fanout``), i.e. at the
point where a real exchange's pushes leave for the network: a batch can be lost together with the
connection, delivered and then cut, duplicated, reordered or corrupted.
"""
from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from loguru import logger

from core.engine import Engine
from core.events import Notice, NoticeLevel
from core.ids import split_position_id
from core.journal.schema import FILL_IDS_SEPARATOR
from core.sim.exchange import Push
from core.sim.server import SimServer
from tests.helpers.engine_helpers import (
    VENUES,
    Rig,
    assert_rows_consistent,
    control,
    sim_state,
    wait_for,
)

PushFilter = Callable[[Push], bool]


# ------------------------------------------------------------------ log capture

@dataclass
class LogLine:
    level: str
    message: str
    has_traceback: bool


@dataclass
class LogCapture:
    """Every loguru record emitted while installed (message text, level, traceback or not)."""

    lines: list[LogLine] = field(default_factory=list)
    handler_id: int | None = None

    def install(self) -> LogCapture:
        def sink(message: Any) -> None:
            record = message.record
            self.lines.append(LogLine(record["level"].name, record["message"],
                                      record["exception"] is not None))
        self.handler_id = logger.add(sink, level="DEBUG", format="{message}", catch=True)
        return self

    def remove(self) -> None:
        if self.handler_id is not None:
            logger.remove(self.handler_id)
            self.handler_id = None

    def matching(self, *needles: str) -> list[LogLine]:
        return [ln for ln in self.lines if all(n in ln.message for n in needles)]

    def one(self, *needles: str) -> LogLine:
        """At least one line with every needle; the first is returned (and must be one plain line)."""
        found = self.matching(*needles)
        assert found, f"no log line with {needles}; last lines: " + " | ".join(
            ln.message for ln in self.lines[-15:])
        assert_plain(found[0].message)
        assert not found[0].has_traceback, found[0].message
        return found[0]

    def tracebacks(self) -> list[str]:
        return [ln.message for ln in self.lines if ln.has_traceback]


def assert_plain(text: str) -> None:
    """A message for the trader: one line, no traceback, no Python repr noise."""
    assert "\n" not in text and "Traceback" not in text, text
    assert text.strip(), "empty message"


def notices(rig: Rig, level: NoticeLevel | None = None) -> list[str]:
    return [e.text for e in rig.events if isinstance(e, Notice)
            and (level is None or e.level is level)]


def notice_with(rig: Rig, *needles: str) -> str:
    found = [t for t in notices(rig) if all(n in t for n in needles)]
    assert found, f"no notice with {needles}; notices: {notices(rig)}"
    assert_plain(found[0])
    return found[0]


async def wait_notice(rig: Rig, *needles: str, timeout: float = 15.0) -> str:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not any(all(n in t for n in needles) for t in notices(rig)):
        if loop.time() > deadline:
            raise AssertionError(f"no notice with {needles}; notices: {notices(rig)}")
        await asyncio.sleep(0.05)
    return notice_with(rig, *needles)


async def wait_log(logs: LogCapture, *needles: str, timeout: float = 15.0) -> LogLine:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not logs.matching(*needles):
        if loop.time() > deadline:
            return logs.one(*needles)  # raises with the last lines
        await asyncio.sleep(0.05)
    return logs.one(*needles)


# ------------------------------------------------------------------ wire faults

def is_fill(push: Push) -> bool:
    return push.channel == "orders" and bool(push.data.get("tradeId"))


def is_funding_settlement(push: Push) -> bool:
    return push.channel == "balance_and_position" and push.data.get("eventType") == "funding_fee"


class Wire:
    """Rewrites the simulator's next push batch that contains a push matching ``match``.

    ``mode``: "lose" (the connection dies with the batch in flight: nothing of it arrives),
    "deliver_then_drop" (the batch arrives, then every connection is cut), "duplicate"
    (matching pushes arrive twice), "corrupt" (``edit`` is applied to the matching pushes),
    or "custom" (``rewrite`` maps the batch to what is sent).
    """

    def __init__(self, srv: SimServer) -> None:
        self.srv = srv
        self._orig = srv.hub.fanout
        self.fired = 0
        self._drops: list[asyncio.Task[int]] = []

    def arm(self, match: PushFilter, mode: str, *,
            edit: Callable[[dict[str, Any]], None] | None = None,
            rewrite: Callable[[list[Push]], list[Push]] | None = None) -> None:
        def fanout(pushes: list[Push]) -> None:
            if not any(match(p) for p in pushes):
                self._orig(pushes)
                return
            self.srv.hub.fanout = self._orig  # one shot
            self.fired += 1
            if mode == "lose":
                self._drop()
                return
            if mode == "deliver_then_drop":
                self._orig(pushes)
                self._drop()
                return
            if mode == "duplicate":
                out: list[Push] = []
                for p in pushes:
                    out += [p, p] if match(p) else [p]
                self._orig(out)
                return
            if mode == "corrupt":
                assert edit is not None
                out = []
                for p in pushes:
                    if match(p):
                        data = copy.deepcopy(p.data)
                        edit(data)
                        p = Push(p.channel, p.uid, p.inst_id, data, p.event_type)
                    out.append(p)
                self._orig(out)
                return
            if mode == "custom":
                assert rewrite is not None
                self._orig(rewrite(pushes))
                return
            raise ValueError(mode)

        self.srv.hub.fanout = fanout  # type: ignore[method-assign]

    def _drop(self) -> None:
        self._drops.append(asyncio.get_running_loop().create_task(self.srv.hub.drop_all()))

    async def settle(self) -> None:
        for task in self._drops:
            await task


def send_raw(srv: SimServer, kind: str, text: str) -> int:
    """A raw text frame to every live ``kind`` (public/private/business) connection."""
    n = 0
    for conn in list(srv.hub.conns):
        if conn.kind == kind and conn.subs:
            conn.send(text)
            n += 1
    return n


# ------------------------------------------------------------------ the end-of-test check

def _opened_ms(position_id: str) -> int:
    return split_position_id(position_id)[2]


async def assert_matches_exchange(rig: Rig, *, expect_fills: int | None = None,
                                  expect_bills: int | None = None,
                                  expect_closes: int | None = None) -> None:
    """Nothing lost, nothing doubled: the journal against the exchange's own history."""
    assert rig.engine is not None
    await rig.flush()
    fills = rig.fills()
    ids = [f["fill_id"] for f in fills]
    dupes = [i for i, n in Counter(ids).items() if n > 1]
    assert not dupes, f"fill ids journaled twice: {dupes}"
    exch_ids = await rig.exchange_fill_ids()
    assert sorted(ids) == sorted(exch_ids), f"journal fills {sorted(ids)} != exchange {sorted(exch_ids)}"
    if expect_fills is not None:
        assert len(ids) == expect_fills

    funding = rig.funding()
    bill_ids = [r["bill_id"] for r in funding]
    assert len(bill_ids) == len(set(bill_ids)), f"bill ids journaled twice: {bill_ids}"
    exch_bills = await rig.funding_bills()
    assert sorted(bill_ids) == sorted(b["billId"] for b in exch_bills)
    by_bill = {b["billId"]: Decimal(b["balChg"]) for b in exch_bills}
    assert all(r["amount"] == by_bill[r["bill_id"]] for r in funding)
    if expect_bills is not None:
        assert len(bill_ids) == expect_bills

    trades = rig.trades()
    keys = [r["close_id"] for r in trades]
    assert len(keys) == len(set(keys)), f"close rows written twice: {keys}"
    assert_rows_consistent(trades)
    if expect_closes is not None:
        assert len(trades) == expect_closes
    if rig.bybit:
        await _lives_match_closed_pnl(rig, trades)
    else:
        await _lives_match_positions_history(rig, trades)
    report = await rig.engine.reconcile()
    assert report.ok, "\n".join(report.lines())


async def _lives_match_closed_pnl(rig: Rig, trades: list[dict[str, Any]]) -> None:
    """Bybit keeps no per-life record: each life's rows against the closed-PnL records of the
    orders that closed it (closedSize in coins; closedPnl excludes funding, so net - funding)."""
    records = await rig.closed_pnl()
    by_order: dict[str, list[dict[str, str]]] = {}
    for rec in records:
        by_order.setdefault(rec["orderId"], []).append(rec)
    closing = {f["fill_id"]: f["order_id"] for f in rig.fills()}
    lives: dict[str, list[dict[str, Any]]] = {}
    for r in trades:
        lives.setdefault(r["position_id"], []).append(r)
    for pid, rows in lives.items():
        orders = {closing[f] for r in rows for f in str(r["fill_ids"] or "").split(FILL_IDS_SEPARATOR)
                  if f in closing}
        recs = [c for o in sorted(orders) for c in by_order.get(o, [])]
        assert recs, f"{pid}: no closed-PnL record for its closing orders {orders}"
        closed = sum((r["size_closed"] for r in rows), Decimal(0))
        assert closed == sum((Decimal(c["closedSize"]) for c in recs), Decimal(0)), (pid, closed, recs)
        if rows[-1]["size_after"] == 0:
            net = sum((r["net_pnl"] - r["funding"] for r in rows), Decimal(0))
            assert net == sum((Decimal(c["closedPnl"]) for c in recs), Decimal(0)), (pid, net, recs)


async def _lives_match_positions_history(rig: Rig, trades: list[dict[str, Any]]) -> None:
    history = []
    for inst in sorted({r["symbol"].split("/")[0] + "-USDT-SWAP" for r in trades}):
        history += await rig.positions_history(inst)
    lives: dict[str, list[dict[str, Any]]] = {}
    for r in trades:
        lives.setdefault(r["position_id"], []).append(r)
    for pid, rows in lives.items():
        symbol, pos_side, _, _ = split_position_id(pid)
        inst = symbol.split("/")[0] + "-USDT-SWAP"
        recs = [h for h in history if h["instId"] == inst and h["posSide"] == pos_side
                and abs(int(h["cTime"]) - _opened_ms(pid)) <= 5000]
        assert len(recs) == 1, f"{pid}: positions-history records {recs}"
        rec = recs[0]
        closed = sum((r["contracts_closed"] for r in rows), Decimal(0))
        assert closed == Decimal(rec["closeTotalPos"]), (pid, closed, rec["closeTotalPos"])
        if rows[-1]["size_after"] == 0:
            net = sum((r["net_pnl"] for r in rows), Decimal(0))
            assert net == Decimal(rec["realizedPnl"]), (pid, net, rec["realizedPnl"])


BOTH = pytest.mark.parametrize("venue", VENUES)


# How each face's gateway words a fault, as the venue quotes it: OKX's codes, Bybit's 10006 and
# its plain 503 / 504 pages.
SAID = {"okx": {"5xx": "(OKX 50026)", "rate_limit": "(OKX 50011)", "timeout": "(OKX 50004)"},
        "bybit": {"5xx": "503 Service", "rate_limit": "(Bybit 10006)", "timeout": "504 Gateway"}}


async def fault(rig: Rig, kind: str, count: int, delay: float = 30.0) -> None:
    await control(rig.srv, "/sim/v1/fault", {"kind": kind, "count": count, "delay": delay})


async def _orders_on_exchange(rig: Rig) -> int:
    return int((await sim_state(rig.srv))["fills"])


# ------------------------------------------------------------------ a fill lost under a REST fault

async def fill_lost_under_a_fault(rig: Rig, kind: str, count: int, delay: float = 30.0) -> Engine:
    """The engine running; the outside client buys 10 while the private stream loses the fill
    push with its connection, and the next ``count`` REST answers are ``kind`` faults: the
    reconnect's backfill has to fetch the fill through them."""
    engine = await rig.start_engine()
    wire = Wire(rig.srv)
    wire.arm(is_fill, "lose")
    await rig.outside("buy", 10)
    await fault(rig, kind, count, delay=delay)
    await wire.settle()
    return engine


async def backfilled_buy_closes(rig: Rig, engine: Engine, logs: LogCapture) -> None:
    """The backfilled buy of ``fill_lost_under_a_fault`` is the engine's position, the outside
    client closes it, and the journal matches the exchange (two fills, one close) with no
    traceback logged on the way."""
    await wait_for(lambda: [p.contracts for p in engine.positions()] == [rig.ct(10)], what="position")
    await rig.outside("sell", 10, reduce_only=True)
    await rig.wait_trades(1)
    await assert_matches_exchange(rig, expect_fills=2, expect_closes=1)
    assert not logs.tracebacks()
