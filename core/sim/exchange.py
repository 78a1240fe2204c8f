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

from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal
from typing import Any

from core.money import ZERO
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

    # ------------------------------------------------------------------ amends and size limits

    def amend_order(self, acct: Account, req: dict[str, Any]) -> Order:
        """trade/amend-order: a resting order's new size and/or price, and its attached TP/SL.

        A new price that crosses the book fills the rest at once as a taker (as a re-priced order
        does on OKX); the margin the order reserves is checked again at the new price.
        """
        try:
            o = self.find_order(acct, str(req.get("instId") or ""), str(req.get("ordId") or ""),
                                str(req.get("clOrdId") or ""))
        except SimError as e:
            if e.code == "51603":
                raise SimError("51503", "Order modification failed as the order does not exist") from None
            raise
        if not o.is_open:
            if o.state == "canceled":
                raise SimError("51509", "Modification failed as the order has been canceled")
            raise SimError("51510", "Modification failed as the order has been completed")
        spec = self.specs[o.inst_id]
        new_sz = params.opt_dec(req.get("newSz"), "newSz")
        new_px = params.price(req.get("newPx"), spec, "newPx") if req.get("newPx") not in (None, "") else None
        attach = [x for x in req.get("attachAlgoOrds") or [] if isinstance(x, dict)]
        if new_sz is None and new_px is None and not attach:
            raise SimError("51000", "Parameter newSz or newPx or attachAlgoOrds required")
        if new_sz is not None and (new_sz <= o.acc_fill_sz or not params.on_grid(new_sz, spec.lot_sz)):
            raise SimError("51000", "Parameter newSz error")
        self._amend_attached(acct, o, attach)
        self._reprice(acct, o, new_sz or o.sz, new_px or o.px)
        self.emit_account(acct)
        return o

    def _reprice(self, acct: Account, o: Order, sz: Decimal, px: Decimal | None) -> None:
        assert px is not None
        bid, ask = self.bid_ask(o.inst_id)
        crosses = (o.side == "buy" and px >= ask) or (o.side == "sell" and px <= bid)
        if crosses and o.ord_type == "post_only":
            raise SimError("51000", "Parameter newPx error: a post-only order would take liquidity")
        old = (o.sz, o.px, o.frozen)
        o.sz, o.px, o.frozen = sz, px, ZERO
        try:
            frozen = self._check_margin(acct, o, ask if crosses and o.side == "buy" else bid if crosses else px)
        except SimError:
            o.sz, o.px, o.frozen = old
            raise
        o.u_time = self.clock()
        if crosses:
            self._execute(acct, o, o.remaining, ask if o.side == "buy" else bid, "T")
        else:
            o.frozen = frozen
            self._emit_order(acct, o)

    def _amend_attached(self, acct: Account, o: Order, attach: list[dict[str, Any]]) -> None:
        """New TP/SL triggers for the order's attachAlgoOrds (before the entry fills: on the order)."""
        for x in attach:
            key = str(x.get("attachAlgoId") or x.get("attachAlgoClOrdId") or "")
            mine = [a for a in o.attach_algo_ords if key in (a.get("attachAlgoId"), a.get("attachAlgoClOrdId"))]
            if not mine:
                raise SimError("51000", "Parameter attachAlgoId error")
            for k in ("tpTriggerPx", "tpOrdPx", "slTriggerPx", "slOrdPx"):
                v = x.get("new" + k[0].upper() + k[1:])
                if v not in (None, ""):
                    params.dec(v, k)
                    mine[0][k] = str(v)
        o.attached = [{k: str(v) for k, v in a.items()} for a in o.attach_algo_ords] or o.attached

    def max_size(self, acct: Account, inst_id: str, td_mode: str, px: Any = None) -> tuple[Decimal, Decimal]:
        """(maxBuy, maxSell) in contracts: what the available margin opens at the leverage, plus
        what closes the opposite position (account/max-size for SWAP)."""
        spec = self.spec(inst_id)
        if td_mode not in ("cross", "isolated"):
            raise SimError("51000", "Parameter tdMode error")
        lever = self.lever_of(acct, inst_id, td_mode)
        at = params.price(px, spec) if px not in (None, "") else self.last(inst_id)
        avail = max(self.account_metrics(acct).avail, ZERO)
        per_ct = spec.ct_val * at * (1 / lever + self.taker_fee)
        opens = (avail / per_ct / spec.lot_sz).to_integral_value(ROUND_FLOOR) * spec.lot_sz
        long_ = short = ZERO
        for p in acct.positions.values():
            if p.inst_id == inst_id and p.mgn_mode == td_mode and p.pos != 0:
                long_ += p.size if p.direction_sign > 0 else ZERO
                short += p.size if p.direction_sign < 0 else ZERO
        if acct.pos_mode == "long_short_mode":
            return opens, opens
        return opens + short, opens + long_
