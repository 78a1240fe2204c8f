"""Funding settlement: one bill per open position of the instrument, as OKX books it.

amount = -direction x coins x mark x rate: longs pay shorts when the rate is positive. The bill's
``pnl`` is the amount (OKX: "for funding fee, refer to pnl"). A cross position pays from (or into)
the cash: ``balChg`` = amount. An isolated position books it to the position: ``balChg`` "0",
``posBalChg`` = amount, the position's margin moves, and the money reaches the cash with the trade
bill that closes the life (so the cash is still the starting cash plus the sum of the bills).
"""
from __future__ import annotations

from decimal import Decimal

from core.money import ZERO
from core.sim.liquidation import Liquidation
from core.sim.params import SimError
from core.sim.state import Account, Bill, Position

MAX_FUNDING_RATE = Decimal("1")  # |rate| above 100% per period is no funding rate at all


class Funding(Liquidation):
    """Funding settlement on top of the margin checks (a payment can trigger a liquidation)."""

    def settle_funding(self, inst_id: str, rate: Decimal | None = None, *, scheduled: bool = False) -> list[Bill]:
        """Settle funding on every open position in ``inst_id``: one bill per position."""
        self.spec(inst_id)
        rate = self.funding_rates[inst_id] if rate is None else rate
        if not rate.is_finite() or abs(rate) > MAX_FUNDING_RATE:
            raise SimError("51000", "Parameter rate error")  # refused before anything is booked
        bills: list[Bill] = []
        for acct in self.accounts.values():
            touched = [p for p in acct.positions.values() if p.inst_id == inst_id and p.pos != 0]
            bills.extend(self._fund(acct, p, rate) for p in touched)
            for p in touched:
                self._emit_position(acct, p)
            if touched:
                self._emit_bp(acct, "funding_fee", touched, [""] * len(touched))
                self.emit_account(acct)
                self._check_liquidation(acct)
        if scheduled:
            self.next_funding[inst_id] = self.clock() + self.funding_interval_ms
        return bills

    def _fund(self, acct: Account, p: Position, rate: Decimal) -> Bill:
        mark = self.mark(p.inst_id)
        amount = -p.direction_sign * p.size * self.specs[p.inst_id].ct_val * mark * rate
        sub_type = "173" if amount < 0 else "174"
        if p.mgn_mode == "isolated":
            p.margin = max(p.margin + amount, ZERO)
            p.pos_funding += amount
            bill = self._book(acct, inst_id=p.inst_id, type_="8", sub_type=sub_type, bal_chg=ZERO, sz=p.size,
                              px=mark, pnl=amount, mgn_mode=p.mgn_mode, pos_bal_chg=amount, pos_bal=p.margin)
        else:
            bill = self._book(acct, inst_id=p.inst_id, type_="8", sub_type=sub_type, bal_chg=amount, sz=p.size,
                              px=mark, pnl=amount, mgn_mode=p.mgn_mode)
        p.funding_fee += amount
        p.u_time = bill.ts
        self._sync_history(acct, p)
        return bill
