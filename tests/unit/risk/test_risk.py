"""Trading control without an exchange: the [risk] table's validation, the refusal line's numbers,
the risk day boundary, the persisted state file, the risk journal family, and the bookkeeping of
orders in flight (updates that beat the REST reply, cancels, resyncs)."""
from __future__ import annotations

import os
import stat
from dataclasses import replace
from datetime import UTC, datetime, time
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.events import PlaceOrder, RiskEvent, RiskEventKind, TradingState
from core.journal import Journal, read_rows
from core.journal.schema import COLUMNS
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    OrderSide,
    OrderState,
    OrderType,
    OrderUpdate,
    PositionSide,
    PosSide,
    RowSource,
)
from core.risk import DayPnl, day_start_at, usdt
from core.risk.inflight import InFlight
from core.risk.statefile import STATE_FILE, SavedState, load_state, save_state
from core.settings.config import ConfigError, RiskSettings, parse_settings
from tests.helpers.paths import REPO


def test_risk_table_defaults_and_values() -> None:
    assert parse_settings({}).risk == RiskSettings()
    r = parse_settings({"risk": {"max_order_notional": 1000, "daily_loss_limit": 150.5,
                                 "max_open_positions": 3, "day_start": "08:30",
                                 "flatten_on_halt": True}}).risk
    assert r.max_order_notional == D("1000") and r.daily_loss_limit == D("150.5")
    assert r.max_open_positions == 3 and r.day_start == time(8, 30) and r.flatten_on_halt
    assert r.max_drawdown is None and r.max_orders_per_minute is None


@pytest.mark.parametrize(("table", "expected"), [
    ({"daily_los_limit": 1}, 'unknown key [risk] "daily_los_limit" — did you mean "daily_loss_limit"?'),
    ({"max_open_positions": 0}, "[risk] max_open_positions must be an integer >= 1, got 0"),
    ({"max_orders_per_minute": 2.5}, "[risk] max_orders_per_minute must be an integer >= 1, got 2.5"),
    ({"max_drawdown": -5}, "[risk] max_drawdown must be a number of USDT > 0, got -5"),
    ({"daily_loss_limit": "100"}, '[risk] daily_loss_limit must be a number of USDT > 0, got "100"'),
    ({"max_total_notional": True}, "[risk] max_total_notional must be a number of USDT > 0, got true"),
    ({"day_start": "24:00"}, '[risk] day_start must be a UTC time "HH:MM" such as "00:00", got "24:00"'),
    ({"flatten_on_halt": "yes"}, '[risk] flatten_on_halt must be true or false, got "yes"'),
])
def test_risk_table_errors_name_the_key(table: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings({"risk": table})
    assert err.value.message == f"config.toml: {expected}"


def test_committed_config_example_parses_when_uncommented() -> None:
    text = (REPO / "config.toml").read_text()
    block = text[text.index("# [risk]"):text.index("[keymap]")]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ") and "=" in line
             or line == "# [risk]"]
    import tomllib

    risk = parse_settings(tomllib.loads("\n".join(lines))).risk
    assert risk.daily_loss_limit is not None and risk.max_order_notional is not None


def test_usdt_amounts_in_refusal_lines() -> None:
    assert usdt(D("1234.5")) == "1,234.5"
    assert usdt(D("1000")) == "1,000"
    assert usdt(D("3600.000")) == "3,600"
    assert usdt(D("-59.1234")) == "-59.12"
    assert usdt(D("0.004")) == "0"


def test_risk_day_starts_at_day_start_utc() -> None:
    at = datetime(2026, 3, 5, 7, 59, tzinfo=UTC)
    assert day_start_at(at, time(0, 0)) == datetime(2026, 3, 5, tzinfo=UTC)
    assert day_start_at(at, time(8, 0)) == datetime(2026, 3, 4, 8, tzinfo=UTC)
    assert day_start_at(at.replace(hour=8), time(8, 0)) == datetime(2026, 3, 5, 8, tzinfo=UTC)


def _close(net: D, at: datetime) -> CloseResult:
    return CloseResult(closed_at=at, symbol="BTC/USDT:USDT", position_id="p", side=PositionSide.LONG,
                       reason=CloseReason.MANUAL, size_before=D("1"), size_closed=D("1"), size_after=D("0"),
                       contracts_closed=D("100"), contract_size=D("0.01"), entry_price=D("1"),
                       exit_price=D("1"), gross_pnl=net, fee=D("0"), liq_penalty=D("0"), funding=D("0"),
                       opened_at=at, source=RowSource.LEDGER)


def test_day_pnl_counts_each_close_once_tracks_the_peak_and_rolls_over() -> None:
    day = DayPnl(time(8, 0))
    t = datetime(2026, 3, 5, 9, tzinfo=UTC)
    assert day.roll(t) and not day.roll(t.replace(hour=10))
    assert not day.add_close("old", _close(D("-50"), t.replace(hour=7)))  # yesterday's risk day
    assert day.add_close("a", _close(D("30"), t))
    assert not day.add_close("a", _close(D("30"), t))  # the same close from the journal and live
    assert day.total(D("20")) == D("50") and day.peak == D("50")
    assert day.total(D("-40")) == D("-10") and day.peak == D("50")
    assert day.roll(datetime(2026, 3, 6, 8, 0, tzinfo=UTC))
    assert day.realized == 0 and day.peak == 0


def test_state_file_is_private_atomic_and_safe_when_unreadable(tmp_path: Path) -> None:
    directory = tmp_path / "journal"
    assert load_state(directory).state is TradingState.RUNNING  # no folder, no file: running
    save_state(directory, SavedState(TradingState.HALTED, "2026-03-05T09:00:00.000Z", "kill_switch", "pressed"))
    path = directory / STATE_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert not (directory / (STATE_FILE + ".tmp")).exists()
    saved = load_state(directory)
    assert saved == SavedState(TradingState.HALTED, "2026-03-05T09:00:00.000Z", "kill_switch", "pressed")
    path.write_text('{"state": "halt')  # torn by hand or by a broken disk: halted, never running
    broken = load_state(directory)
    assert broken.state is TradingState.HALTED and broken.rule == "state_file"
    save_state(directory, SavedState(TradingState.RUNNING))
    assert load_state(directory).state is TradingState.RUNNING


async def test_risk_family_rows_once_each_across_a_restart(tmp_path: Path) -> None:
    assert COLUMNS["risk"] == ("ts", "event", "rule", "value", "limit", "state", "message")
    t = datetime(2026, 3, 5, 9, 0, 0, 123000, tzinfo=UTC)
    halt = RiskEvent(t, RiskEventKind.HALT, "daily_loss_limit", D("61.8"), D("50"), TradingState.HALTED,
                     "today's net -61.8 USDT, limit 50, with a comma")
    refused = RiskEvent(t, RiskEventKind.REFUSED, "max_order_notional", D("3600"), D("3000"),
                        TradingState.RUNNING, "RISK REFUSED max_order_notional: order 3,600 USDT > limit 3,000 USDT")
    journal = Journal(tmp_path)
    await journal.start()
    assert journal.record_risk(halt) and journal.record_risk(refused)
    assert not journal.record_risk(halt)
    await journal.close()
    journal = Journal(tmp_path)
    await journal.start()
    assert not journal.record_risk(refused)  # indexed from disk at open
    await journal.close()
    rows = read_rows(tmp_path, "risk")
    assert [(r["event"], r["rule"], r["value"], r["limit"], r["state"]) for r in rows] == [
        ("halt", "daily_loss_limit", "61.8", "50", "halted"),
        ("refused", "max_order_notional", "3600", "3000", "running")]
    assert rows[1]["message"] == refused.message and rows[0]["ts"] == "2026-03-05T09:00:00.123Z"


def _fill(order_id: str, contracts: str) -> Fill:
    return Fill(fill_id=f"f-{order_id}-{contracts}", order_id=order_id, client_order_id="", symbol="BTC/USDT:USDT",
                side=OrderSide.BUY, contracts=D(contracts), contract_size=D("0.01"), price=D("60000"),
                fee=D("0"), fee_ccy="USDT", ts=datetime(2026, 3, 5, tzinfo=UTC))


def _done(order_id: str, state: OrderState, filled: str) -> OrderUpdate:
    return OrderUpdate(order_id=order_id, client_order_id="", symbol="BTC/USDT:USDT", side=OrderSide.BUY,
                       order_type="limit", contracts=D("5"), contract_size=D("0.01"), price=D("59000"),
                       state=state, ts=datetime(2026, 3, 5, tzinfo=UTC), filled_contracts=D(filled))


def test_orders_in_flight_count_until_filled_or_canceled_even_when_updates_beat_the_reply() -> None:
    key = ("BTC/USDT:USDT", PosSide.NET)
    clock = [0.0]
    flight = InFlight(lambda: clock[0])
    buy = PlaceOrder("BTC/USDT:USDT", OrderSide.BUY, D("5"), OrderType.LIMIT, D("59000"))
    a = flight.reserve(buy)
    assert flight.pending() == {key: (D("5"), D("0"))} and flight.sending == 1
    flight.on_event(_fill("o1", "2"))  # the push beat the REST reply that names o1
    flight.placed(a, "o1")
    assert flight.pending() == {key: (D("3"), D("0"))} and flight.sending == 0
    flight.on_event(_done("o1", OrderState.CANCELED, "2"))  # the rest canceled
    assert flight.pending() == {} and flight.count() == 0
    # a sell in flight takes away; a refused send stops counting at once
    b = flight.reserve(PlaceOrder("BTC/USDT:USDT", OrderSide.SELL, D("1")))
    c = flight.reserve(buy)
    flight.failed(c)
    assert flight.pending() == {key: (D("0"), D("1"))}
    flight.placed(b, "o2")
    # done before all its fills showed: counts what is still to land, at most DONE_GRACE_S
    flight.on_event(_done("o2", OrderState.FILLED, "1"))
    assert flight.pending() == {key: (D("0"), D("1"))}
    clock[0] = 31.0
    assert flight.pending() == {}
    # after a resync: an order placed before it that the exchange no longer shows stops counting
    d = flight.reserve(buy)
    flight.placed(d, "o3")
    assert flight.prune({"o3"}, 40.0) == 0 and flight.count() == 1
    assert flight.prune(set(), 40.0) == 1 and flight.count() == 0
    # a send whose reply named no order id is booked under its client id; its updates find it
    e = flight.reserve(buy)
    flight.placed(e, "pdcClient1")
    flight.on_event(replace(_done("o5", OrderState.CANCELED, "0"), client_order_id="pdcClient1"))
    assert flight.count() == 0
