"""The strategy host on the embedded simulator, through the real engine and adapter: the guide's
example file loaded by path trades; a strategy that raises is stopped with a notice while the
engine goes on; the ema_scalper warms up from history candles, enters with exchange-side TP/SL
on a price move, keeps out while paused and closes on its time stop; [strategy] validation."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from core.settings.config import ConfigError, load_settings
from core.strategies import StrategyError, load_class, load_strategy
from tests.helpers.engine_helpers import BTC, BTC_ID
from tests.helpers.strategies_helpers import load, write_config

pytestmark = pytest.mark.timeout(120)


# ---------------------------------------------------------------- the guide's example, by path


# ---------------------------------------------------------------- a strategy that raises


# ---------------------------------------------------------------- ema_scalper


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
    from core.service.runner import run_headless

    (tmp_path / "mine.py").write_text("def broken(:\n", encoding="utf-8")
    settings = load(write_config(tmp_path, 'path = "mine.py"'))
    assert run_headless(settings, 1.0) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("mine.py: cannot be loaded: SyntaxError line 1: "), err
