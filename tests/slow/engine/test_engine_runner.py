"""core.service.runner (build_stack, run_headless) and the demo scalper strategy on the embedded simulator."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from decimal import Decimal as D
from pathlib import Path

import pytest

from core.events import PlaceOrder
from core.journal import read_fills, read_trades
from core.model import OrderSide
from core.service.runner import build_stack, run_headless
from core.settings.config import (
    ExchangeSettings,
    Settings,
)
from core.strategies import StrategyError, make_strategy
from tests.helpers.engine_helpers import BTC, BTC_ID, control, wait_for
from tests.helpers.paths import REPO
from tests.helpers.runner_helpers import _settings

pytestmark = pytest.mark.timeout(90)


async def test_build_stack_embedded_sim_trades_and_flushes(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    async with build_stack(settings) as stack:
        assert stack.sim is not None and stack.strategy is None
        res = await stack.engine.submit(PlaceOrder(BTC, OrderSide.SELL, D("3")))
        assert res.ok, res
        await wait_for(lambda: len(stack.engine.positions()) == 1, what="position")
        state = (await control(stack.sim, "/sim/v1/state"))[0]["accounts"][0]  # type: ignore[arg-type]
        assert [p["pos"] for p in state["positions"]] == ["-3"]
    # everything stopped and on disk
    fills = read_fills(settings.journal.dir)
    assert len(fills) == 1 and fills[0]["contracts"] == D("3") and fills[0]["origin"] == "console"


async def test_demo_scalper_opens_with_exchange_side_tp_and_sl(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "demo_scalper", interval_s=0.1, max_positions=1,
                         partial_chance=0, seed=5, notional=600)
    async with build_stack(settings) as stack:
        engine, sim = stack.engine, stack.sim
        assert stack.strategy is not None
        await wait_for(lambda: len(engine.positions()) == 1, what="strategy position")
        (pos,) = engine.positions()
        assert pos.contracts == D("1")  # 600 USDT at 60000 = 0.01 BTC = 1 contract
        state = (await control(sim, "/sim/v1/state"))[0]["accounts"][0]  # type: ignore[arg-type]
        (algo,) = state["liveAlgos"]
        tp, sl = D(algo["tpTriggerPx"]), D(algo["slTriggerPx"])
        assert (tp > 60000 > sl) if pos.side.value == "long" else (tp < 60000 < sl)
        await control(sim, "/sim/v1/price", {"instId": BTC_ID, "px": str(tp)})  # type: ignore[arg-type]

        async def closed() -> bool:
            await stack.journal.flush()
            return len(read_trades(settings.journal.dir)) >= 1
        await wait_for(closed, what="tp close")
        (row,) = read_trades(settings.journal.dir)[:1]
        assert row["reason"] == "tp"
        opening = read_fills(settings.journal.dir)[0]
        assert opening["origin"] == "strategy" and opening["client_order_id"].startswith("pds")


async def test_demo_scalper_partial_close_is_reason_strategy(tmp_path: Path) -> None:
    settings = _settings(tmp_path, "demo_scalper", interval_s=0.1, max_positions=1,
                         partial_chance=1, seed=2, notional=2400)
    async with build_stack(settings) as stack:
        async def partial() -> bool:
            await stack.journal.flush()
            return any(r["reason"] == "strategy" for r in read_trades(settings.journal.dir))
        await wait_for(partial, what="strategy partial close")
        row = next(r for r in read_trades(settings.journal.dir) if r["reason"] == "strategy")
        assert row["size_before"] == D("0.04") and row["size_closed"] == D("0.02")


def test_unknown_strategy_and_bad_params() -> None:
    assert make_strategy("none") is None
    with pytest.raises(StrategyError, match="unknown strategy"):
        make_strategy("grid")
    with pytest.raises(StrategyError, match="notional"):
        make_strategy("demo_scalper", {"notional": "lots"})


def test_headless_unreachable_exchange_is_exit_2_one_line(tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path)
    settings = Settings(exchange=ExchangeSettings(venue="sim", url="http://127.0.0.1:1", symbols=(BTC,)),
                        journal=settings.journal, config_path=settings.config_path)
    assert run_headless(settings, 1.0) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "127.0.0.1:1" in err[0] and "Traceback" not in err[0]


def test_headless_duration_runs_and_stops(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    settings = _settings(tmp_path)
    started = time.monotonic()
    assert run_headless(settings, 1.0) == 0
    assert time.monotonic() - started < 20
    assert "perpdesk headless" in capsys.readouterr().out


def test_headless_sigterm_stops_cleanly_with_journal_flushed(tmp_path: Path) -> None:
    cfg = tmp_path / "config.toml"
    cfg.write_text('[exchange]\nvenue = "sim"\nsymbols = ["BTC/USDT:USDT"]\n'
                   '[sim]\nspeed = 20\nseed = 4\nfunding_interval_s = 3600\n'
                   '[strategy]\nname = "demo_scalper"\n'
                   '[strategy.params]\ninterval_s = 0.2\nmax_positions = 1\n')
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "console", "--config", str(cfg), "--headless"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "perpdesk headless" in line, (line, proc.stderr.read() if proc.stderr else "")
        deadline = time.monotonic() + 60  # a bound for a loaded machine: fills usually come in seconds
        while time.monotonic() < deadline and not read_fills_safe(tmp_path / "journal"):
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    fills = read_fills(tmp_path / "journal")
    assert fills and all(f["origin"] in ("strategy", "tp", "sl") for f in fills)
    assert list((tmp_path / "logs").glob("perpdesk_*.log"))
    log = next((tmp_path / "logs").glob("perpdesk_*.log")).read_text()
    assert "FILL " in log and "ENGINE STOPPED" in log


def read_fills_safe(directory: Path) -> list:
    try:
        return read_fills(directory)
    except Exception:  # noqa: BLE001 - a file mid-write
        return []
