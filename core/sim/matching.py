"""Matching: accepting, filling, resting and canceling normal orders.

One fill (``_execute``) moves the position, writes one bill and one fill record, refreshes the
positions-history record and pushes orders, positions and balance_and_position. Simplifications
(documented, not hidden): market orders never partially fill; limit orders fill whole when the
last price crosses them. Order parsing lives in ``core.sim.params``.
"""
from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from core.money import ZERO
from core.sim import params
from core.sim.books import AVG_PX_STEP, MARGIN_STEP, Books, bill_kind, close_type
from core.sim.params import SimError
from core.sim.state import Account, AlgoOrder, FillRecord, Order, Position


class Matching(Books):
    """Normal orders: place, fill, rest, cancel."""

    # ------------------------------------------------------------------ execution

    def _split(self, p: Position, side: str, sz: Decimal) -> tuple[Decimal, Decimal]:
        """(closing contracts, opening contracts) of a fill of ``sz`` on slot ``p``."""
        if p.pos_side == "net":
            if p.pos != 0 and (p.pos > 0) != (side == "buy"):
                close = min(sz, p.size)
                return close, sz - close
            return ZERO, sz
        closing = (p.pos_side == "long") == (side == "sell")
        return (min(sz, p.size), ZERO) if closing else (ZERO, sz)

    def _close_part(self, acct: Account, o: Order, p: Position, close: Decimal, px: Decimal, fee: Decimal,
                    trigger_px: Decimal | None) -> tuple[Decimal, bool]:
        """Reduce ``p`` by ``close`` contracts at ``px``: (price PnL, whether the life ended)."""
        ct_val = self.specs[o.inst_id].ct_val
        before = p.size
        d = p.direction_sign
        pnl = (px - p.avg_px) * close * ct_val * d
        p.pnl += pnl
        p.fee += fee
        p.close_total_pos += close
        p.close_notional += close * px
        if p.mgn_mode == "isolated":
            p.margin = (p.margin * (before - close) / before).quantize(MARGIN_STEP, ROUND_HALF_EVEN)
        p.pos = p.pos - close * d if p.pos_side == "net" else p.pos - close
        closed_life = p.pos == 0
        p.u_time = self.clock()
        self._sync_history(acct, p, close_type(o.category, closed_life), trigger_px)
        if closed_life:
            p.margin = ZERO
        return pnl, closed_life

    def _open_part(self, acct: Account, o: Order, p: Position, open_: Decimal, px: Decimal, fee: Decimal,
                   now: int) -> None:
        """Grow ``p`` by ``open_`` contracts at ``px`` (a new life when it was flat, created at ``now``,
        the opening trade's own time: a life's cTime is its opening fill's ts to the millisecond)."""
        ct_val = self.specs[o.inst_id].ct_val
        if p.pos == 0:
            # a new life in this slot: fresh accumulators, same posId
            p.c_time, p.avg_px = now, px
            p.pnl = p.fee = p.funding_fee = p.liq_penalty = p.pos_funding = ZERO
            p.open_max_pos = p.close_total_pos = p.close_notional = ZERO
            p.history = None
            p.lever = self.lever_of(acct, o.inst_id, o.td_mode)
        else:
            p.avg_px = ((p.avg_px * p.size + px * open_) / (p.size + open_)).quantize(
                AVG_PX_STEP, ROUND_HALF_EVEN).normalize()
        p.fee += fee
        if p.mgn_mode == "isolated":
            p.margin += (open_ * ct_val * px / p.lever).quantize(MARGIN_STEP, ROUND_HALF_EVEN)
        sign = 1 if (p.pos_side == "long" or (p.pos_side == "net" and o.side == "buy")) else -1
        p.life_dir = sign
        p.pos = p.pos + open_ * sign if p.pos_side == "net" else p.pos + open_
        p.open_max_pos = max(p.open_max_pos, p.size)
        p.u_time = self.clock()
        if p.history is not None:
            self._sync_history(acct, p)

    def _execute(self, acct: Account, o: Order, sz: Decimal, px: Decimal, exec_type: str,
                 *, event_type: str = "filled", trigger_px: Decimal | None = None) -> None:
        """Apply one fill of ``o``: position, cash (one bill), fill record, history and pushes."""
        spec = self.specs[o.inst_id]
        now = self.clock()  # one execution, one time: the trade's ts and a life it opens share it
        p = self.slot(acct, o.inst_id, o.td_mode, o.pos_side)
        close, open_ = self._split(p, o.side, sz)
        rate = ZERO if o.category != "normal" else (self.taker_fee if exec_type == "T" else self.maker_fee)
        fee_close = -(close * spec.ct_val * px * rate)
        fee_open = -(open_ * spec.ct_val * px * rate)
        pnl, closed_life, released = ZERO, False, ZERO
        if close:
            pnl, closed_life = self._close_part(acct, o, p, close, px, fee_close, trigger_px)
            if closed_life:
                # isolated funding held in the position's margin reaches the cash with the close
                released, p.pos_funding = p.pos_funding, ZERO
        if open_:
            self._open_part(acct, o, p, open_, px, fee_open, now)
        fee = fee_close + fee_open
        trade_id = self.ids.next()
        p.last_trade_id = trade_id
        self._record_fill(acct, o, sz, px, exec_type, pnl, fee, trade_id, released, now)
        self._emit_order(acct, o)
        self._emit_position(acct, p)
        self._emit_bp(acct, event_type, [p], [trade_id])
        self._after_fill(acct, o, p, closed_life)

    def _record_fill(self, acct: Account, o: Order, sz: Decimal, px: Decimal, exec_type: str, pnl: Decimal,
                     fee: Decimal, trade_id: str, released: Decimal, now: int) -> None:
        """The fill's bill and fill record, and the order's fill fields (stamped ``now``)."""
        mark = self.mark(o.inst_id)
        bill_type, sub_type = bill_kind(o.category, o.side, o.pos_side)
        bill = self._book(acct, inst_id=o.inst_id, type_=bill_type, sub_type=sub_type,
                          bal_chg=pnl + fee + released, sz=sz, px=px, pnl=pnl, fee=fee, mgn_mode=o.td_mode,
                          ord_id=o.ord_id, trade_id=trade_id, exec_type=exec_type, cl_ord_id=o.cl_ord_id,
                          mark_px=mark)
        o.acc_fill_sz += sz
        o.fill_notional += sz * px
        o.fee += fee
        o.pnl += pnl
        o.trade_id, o.fill_sz, o.fill_px, o.fill_fee, o.fill_pnl = trade_id, sz, px, fee, pnl
        o.fill_time, o.exec_type, o.u_time, o.fill_mark_px = now, exec_type, now, mark
        o.state = "filled" if o.acc_fill_sz >= o.sz else "partially_filled"
        if not o.is_open:
            o.frozen = ZERO
            acct.open_orders.pop(o.ord_id, None)
        self.volume[o.inst_id] += sz
        acct.fills.append(FillRecord(
            inst_id=o.inst_id, trade_id=trade_id, ord_id=o.ord_id, cl_ord_id=o.cl_ord_id,
            bill_id=bill.bill_id, tag=o.tag, side=o.side, pos_side=o.pos_side, fill_px=px, fill_sz=sz,
            fee=fee, fill_pnl=pnl, exec_type=exec_type, ts=now, mark_px=mark, sub_type=sub_type))

    def _after_fill(self, acct: Account, o: Order, p: Position, closed_life: bool) -> None:
        """Hook for the algo layer (attached TP/SL, position TP/SL); nothing at this layer."""

    # ------------------------------------------------------------------ orders

    def _check_reduce(self, acct: Account, o: Order) -> None:
        """Reduce-only: there must be a position to reduce; the size is capped at it."""
        if not o.reduce_only:
            return
        p = acct.positions.get((o.inst_id, o.td_mode, o.pos_side))
        close = self._split(p, o.side, o.sz)[0] if p is not None else ZERO
        if close == 0:
            raise SimError("51169", "Order failed because you don't have any positions in this direction "
                                    "for this contract")
        if o.sz > close:
            o.sz = close

    def _check_margin(self, acct: Account, o: Order, px: Decimal) -> Decimal:
        """Initial margin the opening part of ``o`` needs at ``px``; 51008 when it isn't there."""
        if o.reduce_only:
            return ZERO
        spec = self.specs[o.inst_id]
        p = acct.positions.get((o.inst_id, o.td_mode, o.pos_side))
        open_ = self._split(p, o.side, o.sz)[1] if p is not None else o.sz
        if open_ == 0:
            return ZERO
        notional = open_ * spec.ct_val * px
        need = notional / o.lever
        if need + notional * self.taker_fee > self.account_metrics(acct).avail:
            raise SimError("51008", "Order failed. Insufficient USDT margin in account")
        return need

    def _context(self, acct: Account) -> params.Context:
        return params.Context(self.ids.next, self.clock(), lambda i, m: self.lever_of(acct, i, m))

    def place_order(self, acct: Account, req: dict[str, Any], *, source: str = "", algo: AlgoOrder | None = None) -> Order:
        """Validate, accept and (if marketable) fill one order. Raises SimError on rejection."""
        inst_id = str(req.get("instId", ""))
        if not inst_id:
            raise SimError("50014", "Parameter instId can not be empty")
        o = params.parse_order(acct, req, self.spec(inst_id), self._context(acct))
        o.source = source
        if algo is not None:
            o.algo_id, o.algo_cl_ord_id = algo.algo_id, algo.algo_cl_ord_id
        self._check_reduce(acct, o)
        if o.ord_type == "market":
            px = self.market_fill_px(o.inst_id, o.side)
            self._check_margin(acct, o, px)
            self._register(acct, o)
            self._execute(acct, o, o.sz, px, "T")
        else:
            self._place_limit(acct, o)
        self.emit_account(acct)
        return o

    def _place_limit(self, acct: Account, o: Order) -> None:
        assert o.px is not None
        bid, ask = self.bid_ask(o.inst_id)
        crosses = (o.side == "buy" and o.px >= ask) or (o.side == "sell" and o.px <= bid)
        if crosses and o.ord_type != "post_only":
            px = ask if o.side == "buy" else bid
            self._check_margin(acct, o, px)
            self._register(acct, o)
            self._execute(acct, o, o.sz, px, "T")
        elif o.ord_type in ("ioc", "fok") or (crosses and o.ord_type == "post_only"):
            self._register(acct, o)
            o.state, o.cancel_source = "canceled", "20" if o.ord_type == "post_only" else "14"
            acct.open_orders.pop(o.ord_id, None)
            self._emit_order(acct, o)
        else:
            o.frozen = self._check_margin(acct, o, o.px)
            self._register(acct, o)
            self._emit_order(acct, o)

    def _register(self, acct: Account, o: Order) -> None:
        acct.orders[o.ord_id] = o
        acct.open_orders[o.ord_id] = o
        if o.cl_ord_id:
            acct.orders_by_cl[o.cl_ord_id] = o.ord_id
        if len(acct.orders) > 20000:
            self._prune(acct)

    @staticmethod
    def _prune(acct: Account) -> None:
        """Keep memory bounded in long demos: forget the oldest finished orders."""
        done = [oid for oid, o in acct.orders.items() if not o.is_open]
        for oid in done[: len(done) // 2]:
            o = acct.orders.pop(oid)
            if acct.orders_by_cl.get(o.cl_ord_id) == oid:
                del acct.orders_by_cl[o.cl_ord_id]

    def find_order(self, acct: Account, inst_id: str, ord_id: str = "", cl_ord_id: str = "") -> Order:
        if not ord_id and not cl_ord_id:
            raise SimError("51003", "Either client order ID or order ID is required")
        oid = ord_id or acct.orders_by_cl.get(cl_ord_id, "")
        o = acct.orders.get(oid)
        if o is None or (inst_id and o.inst_id != inst_id):
            raise SimError("51603", "Order does not exist")
        return o

    def cancel_order(self, acct: Account, inst_id: str, ord_id: str = "", cl_ord_id: str = "") -> Order:
        try:
            o = self.find_order(acct, inst_id, ord_id, cl_ord_id)
        except SimError as e:
            if e.code == "51603":
                raise SimError("51400", "Order cancellation failed as the order does not exist") from None
            raise
        if not o.is_open:
            code = "51401" if o.state == "canceled" else "51402"
            raise SimError(code, "Order has been canceled" if code == "51401" else "Order has been filled")
        self._cancel(acct, o, "1")
        self.emit_account(acct)
        return o

    def _cancel(self, acct: Account, o: Order, source: str) -> None:
        o.state, o.cancel_source, o.frozen, o.u_time = "canceled", source, ZERO, self.clock()
        acct.open_orders.pop(o.ord_id, None)
        o.trade_id = ""
        self._emit_order(acct, o)

    # ------------------------------------------------------------------ resting orders

    def _fill_crossed(self, acct: Account, inst_id: str) -> None:
        """Fill every resting limit order of ``inst_id`` the last price has crossed."""
        last = self.last(inst_id)
        for o in [o for o in acct.open_orders.values() if o.inst_id == inst_id]:
            if not o.is_open:
                continue
            assert o.px is not None
            if (o.side == "buy" and last <= o.px) or (o.side == "sell" and last >= o.px):
                self._fill_resting(acct, o)

    def _fill_resting(self, acct: Account, o: Order) -> None:
        if o.reduce_only:
            p = acct.positions.get((o.inst_id, o.td_mode, o.pos_side))
            close = self._split(p, o.side, o.remaining)[0] if p is not None else ZERO
            if close == 0:
                self._cancel(acct, o, "31")
                return
            if close < o.remaining:
                o.sz = o.acc_fill_sz + close
        o.frozen = ZERO
        self._execute(acct, o, o.remaining, o.px or self.last(o.inst_id), "M")
        self.emit_account(acct)
