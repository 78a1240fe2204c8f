"""The simulator through an unmodified ccxt client: the symbol and the account's cash."""
from __future__ import annotations

from decimal import Decimal as D

import ccxt.pro

BTC = "BTC/USDT:USDT"


async def cash(ex: ccxt.pro.okx) -> D:
    bal = await ex.fetch_balance()
    return D(bal["info"]["data"][0]["details"][0]["cashBal"])
