"""The simulated exchange: accounts, matching, positions, margin, liquidation, funding, history.

Pure Decimal and no I/O: the server feeds it requests and prices, and drains ``outbox`` for the
WebSocket pushes. Built in layers, one idea each, every layer using only the ones below it:

- ``base.ExchangeBase``: accounts, prices, margin figures, pushes (mark price = last price; one
  maintenance rate per instrument);
- ``books.Books``: bills and positions-history (the only place a balance changes);
- ``matching.Matching``: normal orders (parsing in ``params``);
- ``algos.AlgoBook``: TP/SL, trigger and attached algo orders;
- ``liquidation.Liquidation``: liquidation and ADL;
- ``funding.Funding``: funding settlement;
- ``Exchange`` (here): position settings, amends, size limits and the price-move sweep.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from core.sim import okx_shapes as shapes
from core.sim import params
from core.sim.base import Push
from core.sim.books import MARGIN_STEP, bill_kind
from core.sim.funding import Funding
from core.sim.params import SimError
from core.sim.state import Account, Order

__all__ = ["Exchange", "Push", "SimError", "bill_kind"]


class Exchange(Funding):
    """The matching and accounting core. All public methods run synchronously and atomically."""

    def close_position(self, acct: Account, inst_id: str, mgn_mode: str, pos_side: str = "",
                       cl_ord_id: str = "", tag: str = "") -> Order:
        """Market-closes the whole position; the closing order carries the caller's clOrdId from the
        start, so its pushes and fills-history tell whose close it was (as on OKX)."""
        self.spec(inst_id)
        if mgn_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter mgnMode error")
        if acct.pos_mode == "net_mode":
            pos_side = "net"
        elif pos_side not in ("long", "short"):
            raise SimError("51000", "Parameter posSide error")
        p = acct.positions.get((inst_id, mgn_mode, pos_side))
        if p is None or p.pos == 0:
            raise SimError("51023", "Position does not exist")
        side = "sell" if p.direction_sign > 0 else "buy"
        return self.place_order(acct, {"instId": inst_id, "side": side, "ordType": "market", "tdMode": mgn_mode,
                                       "sz": shapes.s(p.size), "reduceOnly": True, "clOrdId": cl_ord_id,
                                       "tag": tag, "posSide": "" if pos_side == "net" else pos_side})

    def set_leverage(self, acct: Account, inst_id: str, mgn_mode: str, lever: Any) -> Decimal:
        spec = self.spec(inst_id)
        lv = params.dec(lever, "lever")
        if lv < 1 or lv > spec.max_lever:
            raise SimError("51000", f"Parameter lever error: 1 to {spec.max_lever}")
        if mgn_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter mgnMode error")
        acct.levers[(inst_id, mgn_mode)] = lv
        for p in acct.positions.values():
            if p.inst_id == inst_id and p.mgn_mode == mgn_mode:
                p.lever = lv
                if p.pos != 0 and mgn_mode == "isolated":
                    p.margin = (p.size * spec.ct_val * p.avg_px / lv).quantize(MARGIN_STEP, ROUND_HALF_EVEN) + p.pos_funding
                if p.pos != 0:
                    self._emit_position(acct, p)
        self.emit_account(acct)
        return lv

    def set_position_mode(self, acct: Account, mode: str) -> None:
        if mode not in ("net_mode", "long_short_mode"):
            raise SimError("51000", "Parameter posMode error")
        if mode == acct.pos_mode:
            return
        if any(p.pos != 0 for p in acct.positions.values()) or bool(acct.open_orders):
            raise SimError("59000", "Settings failed. Close any open positions or orders before modifying settings")
        acct.pos_mode = mode

    # ------------------------------------------------------------------ market events

    def on_price(self, inst_id: str) -> None:
        """After a price move: fire algos, fill crossed limit orders, then liquidate."""
        for acct in self.accounts.values():
            self._fire_algos(acct, inst_id)
            self._fill_crossed(acct, inst_id)
            self._check_liquidation(acct)
