"""A journal made from what the exchange says, a trade from outside, and settings for reconcile."""
from __future__ import annotations

import csv
from decimal import Decimal
from pathlib import Path
from typing import Any

D = Decimal
BTC, ETH, SOL = "BTC/USDT:USDT", "ETH/USDT:USDT", "SOL/USDT:USDT"


def edit_cell(path: Path, match: dict[str, str], column: str, value: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    head = rows[0]
    hits = [r for r in rows[1:] if all(r[head.index(k)] == v for k, v in match.items())]
    assert len(hits) == 1
    hits[0][head.index(column)] = value
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _settings(url: str | None, journal_dir: Path, port: int = 0) -> Any:
    from core.settings.config import ExchangeSettings, JournalSettings, Settings, SimSettings

    return Settings(exchange=ExchangeSettings(venue="sim", url=url, symbols=(BTC, ETH, SOL)),
                    sim=SimSettings(port=port), journal=JournalSettings(dir=journal_dir))


