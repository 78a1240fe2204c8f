"""The instrument the Bybit parser tests use."""
from __future__ import annotations

from decimal import Decimal as D

from core.model import Instrument

BTC = Instrument("BTC/USDT:USDT", "BTCUSDT", D(1), D("0.0001"), D("0.0001"), D("0.1"))
