"""Strategies hosted by a real engine on the simulator."""
from __future__ import annotations

import os
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.events import (
    KillSwitch,
    Notice,
    PauseStrategy,
    PlaceOrder,
    ResumeTrading,
    TradingState,
)
from core.journal import read_fills, read_trades
from core.model import OrderSide, Origin
from core.service.runner import Stack, build_stack
from tests.helpers.engine_helpers import BTC, sim_state, wait_for
from tests.helpers.fault_helpers import LogCapture
from tests.helpers.paths import REPO
from tests.helpers.strategies_helpers import load, move, write_config

pytestmark = pytest.mark.timeout(120)


EXAMPLE = REPO / "docs" / "examples" / "my_strategy.py"


def notices(stack: Stack) -> list[Notice]:
    got: list[Notice] = []
    stack.engine.subscribe(lambda e: got.append(e) if isinstance(e, Notice) else None)
    return got


async def strategy_orders(stack: Stack) -> list[dict[str, Any]]:
    await stack.journal.flush()
    return [f for f in read_fills(stack.journal.directory) if f["origin"] == "strategy"]


class RefuseStrategyEntries:
    """A risk limit as the engine's check chain holds one: refuses entries sent by a strategy."""

    gate = False

    def __init__(self) -> None:
        self.seen: list[object] = []

    def __call__(self, command: object, origin: Origin) -> str | None:
        self.seen.append(command)
        return "test limit: no strategy entries" if origin is Origin.STRATEGY else None


RAISES = '''
from core.strategies.base import Strategy


class Broken(Strategy):
    name = "broken"

    async def on_mark(self, ctx, mark):
        raise RuntimeError("boom at " + str(mark.price))
'''


async def test_example_file_loaded_by_path_trades_with_tp_and_sl(tmp_path: Path) -> None:
    rel = os.path.relpath(EXAMPLE, tmp_path)  # relative to config.toml, as a trader writes it
    cfg = write_config(tmp_path, f'path = "{rel}"', "lookback = 5\nnotional = 1200\nhold_minutes = 60")
    settings = load(cfg)
    assert settings.strategy.path == EXAMPLE.resolve() or settings.strategy.path.resolve() == EXAMPLE.resolve()
    async with build_stack(settings) as stack:
        assert stack.strategy is not None and stack.strategy.name == "range_breakout"
        assert len(stack.strategy.ctx.candles(BTC)) >= 5  # warmed up from history candles
        high = max(c.high for c in stack.strategy.ctx.candles(BTC, 5))
        await move(stack, str(high + 1000))  # a breakout above the 5-minute range
        await wait_for(lambda: len(stack.engine.positions()) == 1, what="breakout position")
        (pos,) = stack.engine.positions()
        # 1200 USDT at the breakout price, rounded down to the lot (0.01 ct = 0.0001 BTC): the price
        # the simulator reached by then decides the contracts, so the test holds the notional
        notional = pos.contracts * pos.contract_size * pos.entry_price
        lot_value = D("0.01") * pos.contract_size * pos.entry_price
        assert pos.side.value == "long" and D(1200) - lot_value - D(12) <= notional <= D(1200) + D(12)
        (algo,) = (await sim_state(stack.sim))["liveAlgos"]  # type: ignore[arg-type]
        assert D(algo["tpTriggerPx"]) > high + 1000 > D(algo["slTriggerPx"])
        (fill,) = await strategy_orders(stack)
        assert fill["client_order_id"].startswith("pds")


async def test_strategy_orders_pass_the_engines_check_chain_and_no_trader_command(tmp_path: Path) -> None:
    rel = os.path.relpath(EXAMPLE, tmp_path)
    cfg = write_config(tmp_path, f'path = "{rel}"', "lookback = 5\nnotional = 1200")
    async with build_stack(load(cfg)) as stack:
        host = stack.strategy
        assert host is not None
        limit = RefuseStrategyEntries()
        stack.engine.orders.checks.add(limit)
        seen = notices(stack)
        high = max(c.high for c in host.ctx.candles(BTC, 5))
        await move(stack, str(high + 1000))
        await wait_for(lambda: any("test limit" in n.text for n in seen), what="refusal notice")
        assert [type(c).__name__ for c in limit.seen] == ["PlaceOrder"]
        assert await stack.engine.settle()
        state = await sim_state(stack.sim)  # type: ignore[arg-type]
        assert state["positions"] == [] and state["liveAlgos"] == [] and host.running
        for command in (KillSwitch(), ResumeTrading(), PauseStrategy()):
            result = await host.ctx.submit(command)
            assert not result.ok and "the trader's" in result.message


async def test_strategy_that_raises_is_stopped_with_a_notice_engine_goes_on(tmp_path: Path) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "broken.py").write_text(RAISES, encoding="utf-8")
    settings = load(write_config(tmp_path, 'path = "strategies/broken.py"'))
    logs = LogCapture().install()
    try:
        async with build_stack(settings) as stack:
            host = stack.strategy
            assert host is not None and host.running
            seen = notices(stack)
            await move(stack, "60100")
            await wait_for(lambda: not host.running, what="strategy stopped")
            assert host.error == "on_mark raised RuntimeError: boom at 60100"
            await wait_for(lambda: any("STRATEGY STOPPED broken" in n.text for n in seen), what="notice")
            assert logs.one("STRATEGY STOPPED broken: on_mark raised RuntimeError: boom at 60100")
            # the engine and the journal go on: a manual order still trades and is journaled
            result = await stack.engine.submit(PlaceOrder(BTC, OrderSide.BUY, D("2")))
            assert result.ok, result
            await wait_for(lambda: len(stack.engine.positions()) == 1, what="manual position")
            await stack.journal.flush()
            assert [f["origin"] for f in read_fills(stack.journal.directory)] == ["console"]
            await move(stack, "60200")  # later events reach a stopped strategy no more
            await stack.engine.settle()
            assert host.error == "on_mark raised RuntimeError: boom at 60100"
    finally:
        logs.remove()


async def test_ema_scalper_enters_with_tp_sl_on_a_move_and_time_stops(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'name = "ema_scalper"', "time_stop_min = 0.03\ncooldown_s = 600")
    async with build_stack(load(cfg)) as stack:
        host = stack.strategy
        assert host is not None and len(host.ctx.candles(BTC)) == host.strategy.warmup  # type: ignore[attr-defined]
        assert await stack.engine.settle()
        assert stack.engine.positions() == []  # frozen market: no candle moved since the warm-up
        await move(stack, "60900")  # +1.5 %: the fast EMA goes above the slow one, the price above both
        await wait_for(lambda: len(stack.engine.positions()) == 1, timeout=5, what="scalper entry")
        (pos,) = stack.engine.positions()
        (algo,) = (await sim_state(stack.sim))["liveAlgos"]  # type: ignore[arg-type]
        tp, sl = D(algo["tpTriggerPx"]), D(algo["slTriggerPx"])
        assert (tp > pos.entry_price > sl) if pos.side.value == "long" else (tp < pos.entry_price < sl)
        # size from the risk budget: 3 USDT at the stop, capped at 1500 USDT of notional
        stop_loss_usdt = abs(pos.entry_price - sl) * pos.coins
        assert pos.notional <= D("1500") + 1 and stop_loss_usdt <= D("3.2")

        async def time_stopped() -> bool:
            await stack.journal.flush()
            return any(r["reason"] == "strategy" for r in read_trades(stack.journal.directory))
        await wait_for(time_stopped, timeout=10, what="time stop close")
        assert stack.engine.positions() == [] and host.running


async def test_ema_scalper_does_not_enter_while_paused(tmp_path: Path) -> None:
    cfg = write_config(tmp_path, 'name = "ema_scalper"')
    async with build_stack(load(cfg)) as stack:
        host = stack.strategy
        assert host is not None
        assert await stack.engine.settle()
        said = notices(stack)
        assert stack.engine.control.pause().ok  # as the trader's `s` does
        assert host.ctx.trading_state is TradingState.PAUSED and not host.ctx.can_enter
        await move(stack, "60900")
        await stack.engine.settle()
        await move(stack, "60950")
        assert await stack.engine.settle()
        assert stack.engine.positions() == [] and await strategy_orders(stack) == []
        # the strategy did not send an entry for the engine to refuse: it read the pause itself
        assert [n.text for n in said if "REFUSED" in n.text] == [], said
        assert stack.engine.control.resume().ok
        await move(stack, "61000")
        await wait_for(lambda: len(stack.engine.positions()) == 1, timeout=5, what="entry after resume")


async def test_a_strategy_failing_at_start_leaves_the_engine_running(tmp_path: Path) -> None:
    (tmp_path / "early.py").write_text(
        "from core.strategies.base import Strategy\n"
        "class Early(Strategy):\n    name = 'early'\n    warmup = 3\n"
        "    async def on_start(self, ctx):\n        raise ValueError('needs 4 symbols, got ' + str(len(ctx.symbols)))\n",
        encoding="utf-8")
    async with build_stack(load(write_config(tmp_path, 'path = "early.py"'))) as stack:
        host = stack.strategy
        assert host is not None and not host.running
        assert host.error == "on_start raised ValueError: needs 4 symbols, got 1"
        assert len(host.ctx.candles(BTC)) == 3  # the warm-up ran before on_start
        result = await stack.engine.submit(PlaceOrder(BTC, OrderSide.SELL, D("1")))
        assert result.ok, result
