"""Strategy files, configs and a price move for the strategy tests."""
from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

from core.service.runner import Stack
from core.settings.config import Settings, load_settings
from tests.helpers.engine_helpers import BTC_ID


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
