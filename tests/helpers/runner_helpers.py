"""Settings for an engine runner in a temporary folder."""
from __future__ import annotations

from pathlib import Path

from core.settings.config import (
    ExchangeSettings,
    JournalSettings,
    Settings,
    SimSettings,
    StrategySettings,
)
from tests.helpers.engine_helpers import BTC


def _settings(tmp_path: Path, strategy: str = "none", **params: object) -> Settings:
    return Settings(
        exchange=ExchangeSettings(venue="sim", symbols=(BTC,)),
        sim=SimSettings(speed=0, seed=3, funding_interval_s=3600),
        journal=JournalSettings(dir=tmp_path / "journal"),
        strategy=StrategySettings(name=strategy, params=dict(params)),
        config_path=tmp_path / "config.toml",
    )
