"""The strategy host on the embedded simulator, through the real engine and adapter: the guide's
example file loaded by path trades; a strategy that raises is stopped with a notice while the
engine goes on; the ema_scalper warms up from history candles, enters with exchange-side TP/SL
on a price move, keeps out while paused and closes on its time stop; [strategy] validation."""
from __future__ import annotations

import os
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.config import ConfigError, Settings, load_settings
from core.events import (
    KillSwitch,
    Notice,
    PauseStrategy,
    PlaceOrder,
    ResumeTrading,
    RiskStatus,
    TradingState,
)
from core.journal import read_fills, read_trades
from core.model import OrderSide, Origin
from core.runner import Stack, build_stack
from core.strategies import StrategyError, load_class, load_strategy
from tests.helpers.engine_helpers import BTC, BTC_ID, sim_state, wait_for
from tests.helpers.fault_helpers import LogCapture

pytestmark = pytest.mark.timeout(120)
REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "docs" / "examples" / "my_strategy.py"


def write_config(tmp_path: Path, strategy: str, params: str = "") -> Path:
    """A config.toml on the embedded simulator, trading BTC only."""
    cfg = tmp_path / "config.toml"
    cfg.write_text('[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
                   "[sim]\nseed = 3\nfunding_interval_s = 3600\n"
                   f'[journal]\ndir = "journal"\n[strategy]\n{strategy}\n'
                   + (f"[strategy.params]\n{params}\n" if params else ""), encoding="utf-8")
    return cfg


def load(cfg: Path) -> Settings:
    """The config as the trader wrote it, on a frozen market (speed 0: the control API moves prices)."""
    settings = load_settings(cfg, ui_state=False)
    return replace(settings, sim=replace(settings.sim, speed=0))


async def move(stack: Stack, px: str) -> None:
    stack.sim.set_price(BTC_ID, D(px))  # type: ignore[attr-defined]


def notices(stack: Stack) -> list[Notice]:
    got: list[Notice] = []
    stack.engine.subscribe(lambda e: got.append(e) if isinstance(e, Notice) else None)
    return got


async def strategy_orders(stack: Stack) -> list[dict[str, Any]]:
    await stack.journal.flush()
    return [f for f in read_fills(stack.journal.directory) if f["origin"] == "strategy"]


# ---------------------------------------------------------------- the guide's example, by path


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


class RefuseStrategyEntries:
    """A risk limit as the engine's check chain holds one: refuses entries sent by a strategy."""

    gate = False

    def __init__(self) -> None:
        self.seen: list[object] = []

    def __call__(self, command: object, origin: Origin) -> str | None:
        self.seen.append(command)
        return "test limit: no strategy entries" if origin is Origin.STRATEGY else None


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


# ---------------------------------------------------------------- a strategy that raises


RAISES = '''
from core.strategies.base import Strategy


class Broken(Strategy):
    name = "broken"

    async def on_mark(self, ctx, mark):
        raise RuntimeError("boom at " + str(mark.price))
'''


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


# ---------------------------------------------------------------- ema_scalper


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
        stack.engine._publish(RiskStatus(TradingState.PAUSED, "ema_scalper", True, D(0), None, D(0), None, "pause"))
        assert host.ctx.trading_state is TradingState.PAUSED and not host.ctx.can_enter
        await move(stack, "60900")
        await stack.engine.settle()
        await move(stack, "60950")
        assert await stack.engine.settle()
        assert stack.engine.positions() == [] and await strategy_orders(stack) == []
        stack.engine._publish(RiskStatus(TradingState.RUNNING, "ema_scalper", True, D(0), None, D(0), None, ""))
        await move(stack, "61000")
        await wait_for(lambda: len(stack.engine.positions()) == 1, timeout=5, what="entry after resume")


# ---------------------------------------------------------------- validation and loading


@pytest.mark.parametrize(("strategy", "needle"), [
    ('name = "ema_scalpr"', 'did you mean "ema_scalper"?'),
    ('nmae = "ema_scalper"', 'unknown key [strategy] "nmae" — did you mean "name"?'),
    ('paht = "x.py"', 'did you mean "path"?'),
    ('path = "strategies/missing.py"', '[strategy] path "strategies/missing.py": no such file'),
    ('path = "strategies/mine.txt"', "[strategy] path must be a Python file ending in .py"),
    ('name = "ema_scalper"\npath = "x.py"', "[strategy] takes one of name, path or module, got name and path"),
    ('module = "my strategies:X"', '[strategy] module must be an importable "package.module:ClassName"'),
    ('name = "my.py"', 'your own strategy file goes in path = "strategies/my.py"'),
])
def test_strategy_config_errors_are_one_line(tmp_path: Path, strategy: str, needle: str) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "mine.txt").write_text("", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(write_config(tmp_path, strategy), ui_state=False)
    assert needle in info.value.message and "\n" not in info.value.message, info.value.message


def test_path_is_relative_to_the_config_folder(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    (folder / "strategies").mkdir(parents=True)
    (folder / "strategies" / "mine.py").write_text("", encoding="utf-8")
    settings = load_settings(write_config(folder, 'path = "strategies/mine.py"'), ui_state=False)
    assert settings.strategy.path == folder / "strategies" / "mine.py"
    assert settings.strategy.label == "mine.py"


@pytest.mark.parametrize(("source", "needle"), [
    ("x = 1\n", "mine.py: defines no subclass of core.strategies.base.Strategy"),
    ("def broken(:\n", "mine.py: cannot be loaded: SyntaxError line 1"),
    ("import no_such_package_here\n", "mine.py: cannot be loaded: ModuleNotFoundError"),
    ("from core.strategies.base import Strategy\nclass A(Strategy):\n    pass\nclass B(Strategy):\n    pass\n",
     "mine.py: defines several strategies (A, B)"),
    ("from core.strategies.base import Strategy\nclass A(Strategy):\n    def on_candle(self, ctx, c):\n"
     "        pass\n", "mine.py: A.on_candle must be an async def"),
    ("from core.strategies.base import Strategy\nclass A(Strategy):\n    def __init__(self, params):\n"
     "        raise KeyError('size')\n", "mine.py: A(params) failed: KeyError: 'size'"),
])
def test_a_bad_strategy_file_is_one_clear_line(tmp_path: Path, source: str, needle: str) -> None:
    file = tmp_path / "mine.py"
    file.write_text(source, encoding="utf-8")
    settings = load_settings(write_config(tmp_path, 'path = "mine.py"'), ui_state=False)
    with pytest.raises(StrategyError) as info:
        load_strategy(settings.strategy)
    assert needle in info.value.message and "\n" not in info.value.message, info.value.message


def test_a_strategy_file_imports_helpers_from_its_folder(tmp_path: Path) -> None:
    (tmp_path / "strategies").mkdir()
    (tmp_path / "strategies" / "helpers_for_mine.py").write_text("SIZE = 7\n", encoding="utf-8")
    (tmp_path / "strategies" / "mine.py").write_text(
        "from helpers_for_mine import SIZE\nfrom core.strategies.base import Strategy\n"
        "class Mine(Strategy):\n    name = 'mine'\n    size = SIZE\n", encoding="utf-8")
    settings = load_settings(write_config(tmp_path, 'path = "strategies/mine.py"'), ui_state=False)
    strategy = load_strategy(settings.strategy)
    assert strategy is not None and strategy.name == "mine" and strategy.size == 7  # type: ignore[attr-defined]


def test_module_form_loads_a_class_and_names_a_missing_one() -> None:
    cls, _ = load_class(module="core.strategies.ema_scalper:EmaScalper")
    assert cls.name == "ema_scalper"
    with pytest.raises(StrategyError, match="no class Nope"):
        load_class(module="core.strategies.ema_scalper:Nope")
    with pytest.raises(StrategyError, match='no module named "no_such_pkg"'):
        load_class(module="no_such_pkg.mod:X")


def test_scalper_params_are_checked() -> None:
    from core.strategies import make_strategy

    with pytest.raises(StrategyError, match='did you mean "risk_usdt"'):
        make_strategy("ema_scalper", {"risk_usd": 5})
    with pytest.raises(StrategyError, match="fast .* must be smaller than slow"):
        make_strategy("ema_scalper", {"fast": 20, "slow": 10})
    with pytest.raises(StrategyError, match="sl_atr must be a number > 0"):
        make_strategy("ema_scalper", {"sl_atr": 0})


# ---------------------------------------------------------------- ema_scalper's rules, by hand


class FakeCtx:
    """Just what ema_scalper reads, with hand-made candles and one position, recording submits."""

    def __init__(self, closes: list[str], position: Any = None) -> None:
        from datetime import UTC, datetime, timedelta

        from core.events import Candle
        from core.model import Instrument

        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        self.closed = [Candle(BTC, "1m", t0 + timedelta(minutes=i), D(c), D(c) + 30, D(c) - 30, D(c), D(1), True)
                       for i, c in enumerate(closes)]
        self.live: Any = None
        self.symbols = (BTC,)
        self.instruments = {BTC: Instrument(BTC, BTC_ID, D("0.01"), D("0.01"), D("0.01"), D("0.1"))}
        self.can_enter = True
        self.sent: list[Any] = []
        self.pos = position
        self.t = t0 + timedelta(minutes=len(closes))

    def candles(self, symbol: str, count: int | None = None) -> list[Any]:
        return self.closed[-count:] if count else list(self.closed)

    def live_candle(self, symbol: str) -> Any:
        return self.live

    def position(self, symbol: str, pos_side: str = "net") -> Any:
        return self.pos

    def positions(self) -> list[Any]:
        return [self.pos] if self.pos else []

    def now(self) -> Any:
        return self.t

    def log(self, message: str) -> None:
        pass

    async def submit(self, command: Any) -> Any:
        from core.events import CommandResult

        self.sent.append(command)
        return CommandResult(True, "ok", ("1",))


async def test_ema_scalper_sizes_from_the_risk_budget_and_exits_on_a_closed_bar_flip() -> None:
    from types import SimpleNamespace

    from core.events import ClosePosition
    from core.model import PositionSide
    from core.strategies.ema_scalper import EmaScalper, atr, ema

    s = EmaScalper({"fast": 2, "slow": 4, "atr_period": 3, "risk_usdt": 6, "sl_atr": 1, "tp_atr": 2,
                    "max_notional": 100000})
    # seeded with mean(1, 2) = 1.5, then alpha 2/3: 1.5 -> 2.5 -> 3.5
    assert abs(ema([D(1), D(2), D(3), D(4)], 2) - D("3.5")) < D("1e-20")
    ctx = FakeCtx(["60000", "60010", "60020", "60030", "60040", "60050"])
    assert atr(ctx.closed, 3) == D(60)  # each bar 60 high-low, closes 10 apart
    await s.on_start(ctx)  # type: ignore[arg-type]
    await s.on_candle(ctx, ctx.closed[-1])  # type: ignore[arg-type]
    (entry,) = ctx.sent
    # risk 6 USDT over a 60 USDT stop (1 ATR) on 0.01 BTC contracts = 10 contracts
    assert entry.side.value == "buy" and entry.contracts == D("10")
    assert (entry.stop_loss, entry.take_profit) == (D("59990.0"), D("60170.0"))

    # held long: an intrabar dip does not close it, a closed bar that flips the trend does
    ctx.pos = SimpleNamespace(symbol=BTC, side=PositionSide.LONG, opened_at=ctx.t, pos_side="net")
    dip = replace(ctx.closed[-1], ts=ctx.t, close=D("59000"), low=D("58990"), confirmed=False)
    ctx.live = dip
    await s.on_candle(ctx, dip)  # type: ignore[arg-type]
    assert len(ctx.sent) == 1
    ctx.closed.append(replace(dip, confirmed=True))
    ctx.live = None
    await s.on_candle(ctx, ctx.closed[-1])  # type: ignore[arg-type]
    assert ctx.sent[1:] == [ClosePosition(BTC)]


def test_headless_with_a_broken_strategy_file_is_exit_2_one_line(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from core.runner import run_headless

    (tmp_path / "mine.py").write_text("def broken(:\n", encoding="utf-8")
    settings = load(write_config(tmp_path, 'path = "mine.py"'))
    assert run_headless(settings, 1.0) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mine.py: cannot be loaded: SyntaxError line 1: "), err


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
