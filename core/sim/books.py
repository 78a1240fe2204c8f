"""Bookkeeping: the bills every cash movement writes and the positions-history records.

``_book`` is the only place a cash balance changes, so the balance is always the starting cash
plus the sum of the bills' ``balChg``, and a position life's bills add up to its
positions-history realizedPnl (pnl + fee + fundingFee + liqPenalty).
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

from core.money import ZERO
from core.sim.base import ExchangeBase
from core.sim.state import Account, Bill, Position, PositionHistory

AVG_PX_STEP = Decimal("1e-12")
MARGIN_STEP = Decimal("1e-12")


def bill_kind(category: str, side: str, pos_side: str) -> tuple[str, str]:
    """OKX's (bill type, subType) of a fill, also the fills-history ``subType``.

    Why it matters: fills-history carries no ``category``, so a client that backfills after a gap
    can only tell an ADL or a liquidation from an ordinary trade by the subType. OKX numbers them
    per mode: net mode names the side (buy/sell), hedge mode names the leg that was closed.
    type 2 trade (1 buy, 2 sell); type 5 liquidation (100/101 partial close long/short, 102/103
    partial buy/sell, 104/105 full close long/short, 106/107 full buy/sell); type 9 ADL (125/126
    close long/short, 127/128 buy/sell).
    """
    buy = side == "buy"
    hedge = pos_side in ("long", "short")
    if category == "partial_liquidation":
        return "5", ("100" if pos_side == "long" else "101") if hedge else ("102" if buy else "103")
    if category == "full_liquidation":
        return "5", ("104" if pos_side == "long" else "105") if hedge else ("106" if buy else "107")
    if category == "adl":
        return "9", ("125" if pos_side == "long" else "126") if hedge else ("127" if buy else "128")
    return "2", "1" if buy else "2"



def close_type(category: str, closed_life: bool) -> str:
    """The positions-history type of a close (OKX keeps the latest one on the record)."""
    if category == "adl":
        return "6" if closed_life else "5"
    if category == "full_liquidation":
        return "3"
    if category == "partial_liquidation":
        return "4"  # a partial liquidation that happens to take the last contracts still is type 4
    return "2" if closed_life else "1"


class Books(ExchangeBase):
    """Bills and positions-history on top of the exchange's state."""

    def _book(self, acct: Account, *, inst_id: str, type_: str, sub_type: str, bal_chg: Decimal,
              sz: Decimal, px: Decimal, pnl: Decimal = ZERO, fee: Decimal = ZERO, mgn_mode: str = "cross",
              ord_id: str = "", trade_id: str = "", exec_type: str = "", cl_ord_id: str = "",
              mark_px: Decimal | None = None, pos_bal_chg: Decimal = ZERO, pos_bal: Decimal = ZERO) -> Bill:
        """The only place the cash balance changes (``pos_bal_chg``: money booked to an isolated position)."""
        acct.cash += bal_chg
        now = self.clock()
        acct.u_time = now
        bill = Bill(bill_id=self.ids.next(), inst_id=inst_id, type=type_, sub_type=sub_type,
                    bal_chg=bal_chg, bal=acct.cash, sz=sz, px=px, pnl=pnl, fee=fee, ts=now,
                    mgn_mode=mgn_mode, ord_id=ord_id, trade_id=trade_id, exec_type=exec_type,
                    cl_ord_id=cl_ord_id, mark_px=mark_px, pos_bal_chg=pos_bal_chg, pos_bal=pos_bal)
        acct.bills.append(bill)
        return bill

    def _sync_history(self, acct: Account, p: Position, ctype: str | None = None,
                      trigger_px: Decimal | None = None) -> None:
        """Create or refresh the positions-history record of the current life of ``p``."""
        if p.history is None:
            if ctype is None:
                return
            p.history = PositionHistory(
                inst_id=p.inst_id, mgn_mode=p.mgn_mode, pos_side=p.pos_side, pos_id=p.pos_id,
                direction="long" if p.life_dir > 0 else "short", c_time=p.c_time,
                u_time=self.clock(), lever=p.lever, open_avg_px=p.avg_px, close_avg_px=ZERO,
                open_max_pos=ZERO, close_total_pos=ZERO, pnl=ZERO, fee=ZERO, funding_fee=ZERO,
                liq_penalty=ZERO, type=ctype)
            acct.pos_history.append(p.history)
        h = p.history
        if ctype is not None:
            h.type = ctype
            h.u_time = self.clock()
        if trigger_px is not None:
            h.trigger_px = trigger_px
        h.open_avg_px = p.avg_px
        h.lever = p.lever
        h.open_max_pos = p.open_max_pos
        h.close_total_pos = p.close_total_pos
        if p.close_total_pos:
            h.close_avg_px = (p.close_notional / p.close_total_pos).quantize(AVG_PX_STEP, ROUND_HALF_EVEN).normalize()
        h.pnl, h.fee, h.funding_fee, h.liq_penalty = p.pnl, p.fee, p.funding_fee, p.liq_penalty
