"""Liquidation and auto-deleveraging.

Liquidation closes at the mark with a penalty capped by what is left of the equity (a gap through
the bankruptcy price can leave the cash negative). A cross account below maintenance first loses
half of its largest position (``partial_liquidation``, positions-history type 4) when that alone
lifts the equity back above the maintenance margin; otherwise every cross position is liquidated
in full (type 3). There is no insurance fund or counterparty book, so ADL never happens by
itself: ``adl()`` (control endpoint ``POST /sim/v1/adl``) deleverages a position on demand,
fee-free as on OKX (category ``adl``, types 5/6, balance_and_position eventType adl).
"""
from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal
from typing import Any

from core.money import ZERO
from core.sim import okx_shapes as shapes
from core.sim.algos import AlgoBook
from core.sim.params import SimError, dec, on_grid
from core.sim.state import Account, Order, Position


class Liquidation(AlgoBook):
    """Margin checks that close positions: liquidation (partial or full) and ADL."""

    def check_all(self) -> None:
        """Liquidation sweep over every account (after funding or a leverage change)."""
        for acct in self.accounts.values():
            self._check_liquidation(acct)

    def _check_liquidation(self, acct: Account) -> None:
        for p in list(acct.positions.values()):
            if p.pos != 0 and p.mgn_mode == "isolated":
                pm = self.position_metrics(acct, p)
                if p.margin + pm.upl <= pm.mmr:
                    self._liquidate(acct, [(p, p.size)], p.margin + pm.upl)
        cross = [p for p in acct.positions.values() if p.pos != 0 and p.mgn_mode == "cross"]
        if cross:
            am = self.account_metrics(acct)
            cross_mmr = am.mmr - self._iso_mmr(acct)
            if am.cross_eq <= cross_mmr:
                tier = self._partial_tier(cross, am.cross_eq, cross_mmr)
                if tier is not None:
                    self._liquidate(acct, [tier], am.cross_eq, category="partial_liquidation")
                else:
                    self._liquidate(acct, [(p, p.size) for p in cross], am.cross_eq)

    def _penalty_rate(self, inst_id: str) -> Decimal:
        return self.liq_penalty_rate if self.liq_penalty_rate is not None else self.specs[inst_id].mmr_rate / 2

    def _partial_tier(self, cross: list[Position], cross_eq: Decimal,
                      cross_mmr: Decimal) -> tuple[Position, Decimal] | None:
        """(position, contracts) when liquidating half of the largest cross position is enough.

        OKX reduces a large position in tiers rather than closing it all at once; the simulator's
        single tier is "half of the position with the largest maintenance margin". Closing at the
        mark moves its uPnL into cash unchanged and a liquidation fill pays no fee, so afterwards
        the cross equity is ``cross_eq - penalty`` and the maintenance margin ``cross_mmr - mmr of
        the half``; the half is taken only if that leaves the equity strictly above it (otherwise
        the very next check would liquidate again, and a full liquidation is the honest outcome).
        """
        p = max(cross, key=lambda q: q.size * self.specs[q.inst_id].ct_val * self.mark(q.inst_id)
                * self.specs[q.inst_id].mmr_rate)
        spec = self.specs[p.inst_id]
        half = (p.size / 2 / spec.lot_sz).to_integral_value(ROUND_FLOOR) * spec.lot_sz
        if half < spec.min_sz or half >= p.size:
            return None
        notional = half * spec.ct_val * self.mark(p.inst_id)
        penalty = notional * self._penalty_rate(p.inst_id)
        if cross_eq - penalty > cross_mmr - notional * spec.mmr_rate:
            return p, half
        return None

    def _liquidate(self, acct: Account, closes: list[tuple[Position, Decimal]], equity: Decimal,
                   category: str = "full_liquidation") -> None:
        """Close ``(position, contracts)`` at the mark; the penalty takes what is left, up to the rate.

        Open orders of the margin mode go first (OKX cancels them before liquidating, which also
        frees their reserved margin).
        """
        mgn_mode = closes[0][0].mgn_mode
        insts = {p.inst_id for p, _ in closes}
        for o in list(acct.open_orders.values()):
            if o.td_mode == mgn_mode and (mgn_mode == "cross" or o.inst_id in insts):
                self._cancel(acct, o, "3")
        remaining = equity
        for p, sz in closes:
            spec = self.specs[p.inst_id]
            mark = self.mark(p.inst_id)
            notional = sz * spec.ct_val * mark
            penalty = min(notional * self._penalty_rate(p.inst_id), max(remaining, ZERO))
            remaining -= penalty
            side = "sell" if p.direction_sign > 0 else "buy"
            now = self.clock()
            o = Order(ord_id=self.ids.next(), cl_ord_id="", tag="", inst_id=p.inst_id, side=side,
                      pos_side=p.pos_side, ord_type="market", td_mode=p.mgn_mode, px=None, sz=sz,
                      reduce_only=True, lever=p.lever, c_time=now, u_time=now, category=category)
            self._register(acct, o)
            if penalty:
                p.liq_penalty -= penalty
                o.liq_penalty = -penalty
                self._book(acct, inst_id=p.inst_id, type_="5", sub_type="109", bal_chg=-penalty,
                           sz=sz, px=mark, fee=ZERO, mgn_mode=p.mgn_mode, ord_id=o.ord_id)
            self._execute(acct, o, sz, mark, "T", event_type="liquidation", trigger_px=mark)
        self.emit_account(acct)

    def adl(self, acct: Account, inst_id: str, sz: Any = None, px: Any = None, *,
            mgn_mode: str = "", pos_side: str = "") -> Order:
        """Auto-deleverage ``sz`` contracts (None or "all": the whole position) at ``px`` (None: mark).

        Why it exists: ADL closes a profitable position when the insurance fund cannot absorb a
        bankrupt counterparty; the simulator has neither, so tests and demos trigger it. As on
        OKX the close is a fee-free fill of category ``adl``, balance_and_position says
        eventType ``adl``, positions-history records type 5 (position remains) or 6 (closed), and
        the cash moves by exactly the price PnL of the fill (one type-9 bill).
        """
        spec = self.spec(inst_id)
        open_ = [p for p in acct.positions.values() if p.inst_id == inst_id and p.pos != 0
                 and (not mgn_mode or p.mgn_mode == mgn_mode)
                 and (not pos_side or p.pos_side == pos_side)]
        if not open_:
            raise SimError("51023", "Position does not exist")
        if len(open_) > 1:
            raise SimError("51000", "Parameter mgnMode/posSide required: more than one position on " + inst_id)
        p = open_[0]
        if sz is None or sz == "" or str(sz).lower() == "all":
            contracts = p.size
        else:
            contracts = dec(sz, "sz")
            if contracts <= 0 or contracts > p.size or not on_grid(contracts, spec.lot_sz):
                raise SimError("51000", f"Parameter sz error: 0 < sz <= {shapes.s(p.size)} on the lot grid")
        fill_px = self.mark(inst_id) if px is None or px == "" else dec(px, "px")
        if fill_px <= 0 or not on_grid(fill_px, spec.tick_sz):
            raise SimError("51000", "Parameter px error")
        now = self.clock()
        o = Order(ord_id=self.ids.next(), cl_ord_id="", tag="", inst_id=inst_id,
                  side="sell" if p.direction_sign > 0 else "buy", pos_side=p.pos_side, ord_type="market",
                  td_mode=p.mgn_mode, px=None, sz=contracts, reduce_only=True, lever=p.lever,
                  c_time=now, u_time=now, category="adl")
        self._register(acct, o)
        self._execute(acct, o, contracts, fill_px, "T", event_type="adl", trigger_px=fill_px)
        self.emit_account(acct)
        # a fill away from the mark moves the equity; keep the account's margin invariant
        self._check_liquidation(acct)
        return o
