"""The instrument OKX's documented examples are routed through."""
from __future__ import annotations

from decimal import Decimal

from core.model import Instrument

D = Decimal

BTC = Instrument(symbol="BTC/USDT:USDT", inst_id="BTC-USDT-SWAP", contract_size=D("0.01"),
                 lot_size=D("0.01"), min_size=D("0.01"), tick_size=D("0.1"), base_ccy="BTC")
