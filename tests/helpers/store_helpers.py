"""Helpers of the store tests: engines on simulators shipping to a test PostgreSQL, and row counts
on both sides (the journal's CSV files, the store's tables)."""
from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path

from core.events import PlaceOrder
from core.model import OrderSide
from core.service.runner import Stack
from core.settings.config import (
    EngineSettings,
    ExchangeSettings,
    JournalSettings,
    Settings,
    SimSettings,
    StoreSettings,
)
from tests.helpers.engine_helpers import BTC, ETH, wait_for
from tests.helpers.pg_helpers import StoreDb


def store_settings(tmp_path: Path, name: str, url: str | None, seed: int = 3) -> Settings:
    return Settings(
        exchange=ExchangeSettings(venue="sim", symbols=(BTC, ETH)),
        sim=SimSettings(speed=0, seed=seed, funding_interval_s=3600),
        journal=JournalSettings(dir=tmp_path / name / "journal"),
        config_path=tmp_path / name / "config.toml",
        engine=EngineSettings(name=name),
        store=StoreSettings(url=url),
    )


async def trade(stack: Stack, rounds: int, size: str = "2") -> None:
    """Open and close positions: fills, closes with PnL and fees in the journal."""
    for i in range(rounds):
        symbol = BTC if i % 2 == 0 else ETH
        for side in (OrderSide.BUY, OrderSide.SELL):
            res = await stack.engine.submit(PlaceOrder(symbol, side, D(size)))
            assert res.ok, res


async def caught_up(stack: Stack, timeout: float = 30.0) -> None:
    await stack.engine.settle()  # close confirmations in: every close row is journaled
    await stack.journal.flush()
    assert stack.store is not None
    link = stack.store

    def done() -> bool:
        link.shipper.wake()
        return link.state.connected and link.state.rows_behind == 0 and not link.state.error

    await wait_for(done, timeout=timeout, what="store caught up")


def csv_rows(journal: Path) -> int:
    """Rows in every day file of the journal (header lines excluded)."""
    n = 0
    for path in journal.glob("*_????-??-??.csv"):
        n += max(0, len(path.read_bytes().splitlines()) - 1)
    return n


def store_rows(db: StoreDb, engine: str) -> int:
    total = 0
    for table in ("orders", "trades", "funding", "positions_open", "risk"):
        total += int(db.server.psql(
            f"SELECT count(*) FROM perpdesk.{table} WHERE engine = '{engine}'", db.name).strip())
    return total
