"""Settings for an engine on the embedded simulator, and a state file with a cash that is not a number."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from core.settings.config import ExchangeSettings, JournalSettings, Settings, SimSettings, StrategySettings
from core.sim.server import SimServer
from tests.helpers.engine_helpers import BTC


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        exchange=ExchangeSettings(venue="sim", symbols=(BTC,)),
        sim=SimSettings(speed=0, seed=3, funding_interval_s=3600),
        journal=JournalSettings(dir=tmp_path / "journal"),
        strategy=StrategySettings(name="none", params={}),
        config_path=tmp_path / "config.toml",
    )


def _nan_cash(path: Path) -> None:
    srv = SimServer(speed=0, state_path=path)
    srv.save()
    _spoil(path, lambda st: st["accounts"][0].update(cash="NaN"))


def _spoil(path: Path, edit: Any) -> None:
    state = json.loads(path.read_text())
    edit(state)
    path.write_text(json.dumps(state))

