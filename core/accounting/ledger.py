"""Positions rebuilt from fills, with OKX's close semantics and fee/funding attribution.

The ledger is the only place that turns executions into position lives and close rows. It keeps
OKX's rules (average entry on increases, entry unchanged on reductions, a net-mode fill crossing
zero closes one life and opens the next) and attributes every fee and funding flow to the life that
incurred it, so that a life's close rows add up to the exchange's positions-history realizedPnl.

Exactness: the average entry price is a division and is rounded (``AVG_QUANTUM``), but the ledger
also carries the exact cost basis (sum of coins x price still open, minus what closes removed at the
average). Partial closes realize at the reported average; the last close of a life realizes against
the remaining cost basis, absorbing the rounding, so realized + unrealized always equals the fills'
cash flow to the last decimal. All arithmetic runs in a wide context with Inexact trapped: anything
but the deliberate average/fee-split rounding raises instead of silently drifting.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Context, Decimal, Inexact, localcontext

from core.ids import ms_from_utc, position_id_for, split_position_id
from core.model import (
    CloseReason,
    CloseResult,
    Fill,
    MarginMode,
    OrderSide,
    PositionSide,
    PositionSnapshot,
    PosSide,
    RowSource,
)
from core.money import ONE, ZERO

AVG_QUANTUM = Decimal("1e-18")  # average entry price and pro-rata fee split resolution
_AVG_EXP = -18
_POS_SIDES = ("net", "long", "short")


def _exact() -> Context:
    """A context wide enough that sums and products of money never round, and loud if they do."""
    ctx = Context(prec=80)
    ctx.traps[Inexact] = True
    return ctx


_EXACT = _exact()  # used through its methods only (never made current): one per process is enough


def _divide(num: Decimal, den: Decimal) -> Decimal:
    """The one deliberate rounding: a division (average entry, fee split) to AVG_QUANTUM."""
    with localcontext(Context(prec=80)):
        q = num / den
        exp = q.as_tuple().exponent
        assert isinstance(exp, int)
        # 120800 / 2.00 comes out as 6.04E+4: keep prices in plain notation for the trader
        return q.quantize(AVG_QUANTUM) if exp < _AVG_EXP else q.quantize(ONE) if exp > 0 else q


@dataclass(frozen=True, slots=True)
class LedgerPosition:
    """A read-only view of one open life. ``cost`` is the exact open cost basis (coins x price)."""

    symbol: str
    pos_side: PosSide
    position_id: str
    side: PositionSide
    contracts: Decimal
    contract_size: Decimal
    coins: Decimal
    entry_price: Decimal
    opened_at: datetime
    fee_pending: Decimal
    funding_pending: Decimal
    funding_total: Decimal
    cost: Decimal | None = None

    def unrealized(self, mark: Decimal) -> Decimal:
        """Price PnL if closed at ``mark``: against the exact cost basis, so it conserves money."""
        # the exact context's own methods (no context built and made current per call): the risk
        # monitor values every open life this way on each of its passes
        ctx = _EXACT
        cost = self.cost if self.cost is not None else ctx.multiply(self.entry_price, self.coins)
        if self.side is PositionSide.LONG:
            return ctx.fma(mark, self.coins, cost.copy_negate())
        return ctx.fma(mark.copy_negate(), self.coins, cost)


class _Life:
    """Mutable state of one open position life (internal; views are LedgerPosition)."""

    __slots__ = ("symbol", "pos_side", "position_id", "side", "contracts", "contract_size",
                 "entry", "cost", "opened_at", "fee_pending", "funding_pending", "funding_total")

    def __init__(self, symbol: str, pos_side: PosSide, side: PositionSide, contracts: Decimal,
                 contract_size: Decimal, price: Decimal, opened_at: datetime, fee: Decimal,
                 seq: int = 1) -> None:
        self.symbol = symbol
        self.pos_side = pos_side
        self.position_id = position_id_for(symbol, pos_side, opened_at, seq)
        self.side = side
        self.contracts = contracts
        self.contract_size = contract_size
        self.entry = price
        self.cost = contracts * contract_size * price
        self.opened_at = opened_at
        self.fee_pending = fee
        self.funding_pending = ZERO
        self.funding_total = ZERO

    @property
    def coins(self) -> Decimal:
        return self.contracts * self.contract_size

    def increase(self, contracts: Decimal, price: Decimal, fee: Decimal) -> None:
        self.contracts += contracts
        self.cost += contracts * self.contract_size * price
        self.entry = _divide(self.cost, self.coins)
        self.fee_pending += fee

    def close(self, fill: Fill, contracts: Decimal, fee_share: Decimal) -> CloseResult:
        """Realize ``contracts`` at the fill price and hand over everything pending to the row."""
        before = self.coins
        closed = contracts * self.contract_size
        removed = self.cost if contracts == self.contracts else self.entry * closed
        gross = (fill.price * closed - removed) * self.side.sign
        self.contracts -= contracts
        self.cost -= removed
        result = CloseResult(
            closed_at=fill.ts, symbol=self.symbol, position_id=self.position_id, side=self.side,
            reason=CloseReason.from_origin(fill.origin), size_before=before, size_closed=closed,
            size_after=self.coins, contracts_closed=contracts, contract_size=self.contract_size,
            entry_price=self.entry, exit_price=fill.price, gross_pnl=gross,
            fee=self.fee_pending + fee_share, liq_penalty=fill.liq_penalty,
            funding=self.funding_pending, opened_at=self.opened_at, source=RowSource.LEDGER,
            fill_ids=(fill.fill_id,),
        )
        self.fee_pending = ZERO
        self.funding_pending = ZERO
        return result

    def view(self) -> LedgerPosition:
        return LedgerPosition(
            symbol=self.symbol, pos_side=self.pos_side, position_id=self.position_id,
            side=self.side, contracts=self.contracts, contract_size=self.contract_size,
            coins=self.coins, entry_price=self.entry, opened_at=self.opened_at,
            fee_pending=self.fee_pending, funding_pending=self.funding_pending,
            funding_total=self.funding_total, cost=self.cost,
        )


class Ledger:
    """Open position lives keyed by (symbol, pos_side); pos_side "net" or a hedge leg."""

    def __init__(self) -> None:
        self._lives: dict[tuple[str, PosSide], _Life] = {}
        # (opened_ms, seq) of the latest life of each leg, open or closed: a life opened in the
        # same millisecond as the one before it takes the next sequence number (unique ids)
        self._latest: dict[tuple[str, PosSide], tuple[int, int]] = {}

    def _next_seq(self, key: tuple[str, PosSide], opened_at: datetime) -> int:
        ms = ms_from_utc(opened_at)
        last = self._latest.get(key)
        seq = last[1] + 1 if last is not None and last[0] == ms else 1
        self._latest[key] = (ms, seq)
        return seq

    def apply_fill(self, fill: Fill) -> list[CloseResult]:
        """Book one execution. Returns [] for an opening/increasing fill, else the close rows."""
        if fill.pos_side not in _POS_SIDES:
            raise ValueError(f"fill {fill.fill_id}: unknown pos_side {fill.pos_side!r}")
        if fill.contracts <= 0 or fill.contract_size <= 0:
            raise ValueError(f"fill {fill.fill_id}: contracts and contract_size must be > 0")
        key = (fill.symbol, fill.pos_side)
        life = self._lives.get(key)
        if fill.pos_side == "net":
            opens = life is None or (fill.side is OrderSide.BUY) == (life.side is PositionSide.LONG)
        else:
            opens = (fill.side is OrderSide.BUY) == (fill.pos_side == "long")
            if not opens and (life is None or fill.contracts > life.contracts):
                have = life.contracts if life else ZERO
                raise ValueError(
                    f"fill {fill.fill_id}: {fill.side.value} {fill.contracts} would take the "
                    f"{fill.symbol} {fill.pos_side} leg of {have} contracts below zero")
        if opens and fill.liq_penalty != 0:
            raise ValueError(f"fill {fill.fill_id}: liquidation penalty on a fill that opens")
        if life is not None and life.contract_size != fill.contract_size:
            raise ValueError(
                f"fill {fill.fill_id}: contract size {fill.contract_size} differs from the open "
                f"{fill.symbol} {fill.pos_side} position's {life.contract_size}")
        with localcontext(_exact()):
            if life is None:
                self._lives[key] = self._open(fill, fill.contracts, fill.fee)
                return []
            if opens:
                life.increase(fill.contracts, fill.price, fill.fee)
                return []
            if fill.contracts <= life.contracts:
                result = life.close(fill, fill.contracts, fill.fee)
                if life.contracts == 0:
                    del self._lives[key]
                return [result]
            # net mode crossing zero: close the old life, open a new one with the remainder;
            # the fill's fee is split pro rata by contracts, the remainder to the opening part
            closing = life.contracts
            close_fee = _divide(fill.fee * closing, fill.contracts)
            result = life.close(fill, closing, close_fee)
            self._lives[key] = self._open(fill, fill.contracts - closing, fill.fee - close_fee)
            return [result]

    def _open(self, fill: Fill, contracts: Decimal, fee: Decimal) -> _Life:
        side = (PositionSide(fill.pos_side) if fill.pos_side != "net"
                else PositionSide.LONG if fill.side is OrderSide.BUY else PositionSide.SHORT)
        seq = self._next_seq((fill.symbol, fill.pos_side), fill.ts)
        return _Life(fill.symbol, fill.pos_side, side, contracts, fill.contract_size, fill.price,
                     fill.ts, fee, seq)

    def adopt(self, symbol: str, pos_side: PosSide, side: PositionSide, contracts: Decimal,
              contract_size: Decimal, entry_price: Decimal, opened_at: datetime) -> LedgerPosition:
        """Seed a life found open on the exchange (start-up) whose opening fills we never saw.

        Replaces any life held for that key: the exchange is the truth for what is open. The held
        life re-adopted (same opening millisecond) keeps its id; another one takes a new id.
        """
        if (pos_side not in _POS_SIDES or pos_side not in ("net", side.value) or contracts <= 0
                or contract_size <= 0):
            raise ValueError(f"cannot adopt {symbol} {pos_side}: {contracts} x {contract_size}")
        key = (symbol, pos_side)
        held = self._lives.get(key)
        if held is not None and ms_from_utc(held.opened_at) == ms_from_utc(opened_at):
            seq = split_position_id(held.position_id)[3]
        else:
            seq = self._next_seq(key, opened_at)
        with localcontext(_exact()):
            life = _Life(symbol, pos_side, side, contracts, contract_size, entry_price, opened_at,
                         ZERO, seq)
        self._lives[key] = life
        return life.view()

    def apply_funding(self, symbol: str, pos_side: PosSide, amount: Decimal) -> str | None:
        """Attribute a funding cash flow (+ received) to the open life; None when flat."""
        life = self._lives.get((symbol, pos_side))
        if life is None:
            return None
        with localcontext(_exact()):
            life.funding_pending += amount
            life.funding_total += amount
        return life.position_id

    def position(self, symbol: str, pos_side: PosSide = PosSide.NET) -> LedgerPosition | None:
        life = self._lives.get((symbol, pos_side))
        return life.view() if life else None

    def positions(self) -> list[LedgerPosition]:
        return [self._lives[k].view() for k in sorted(self._lives)]

    def open_coins(self) -> list[tuple[str, PosSide, Decimal]]:
        """(symbol, pos_side, coins) of every open life, no views built: the pre-trade risk check
        asks on every order."""
        return [(life.symbol, life.pos_side, life.contracts * life.contract_size)
                for life in self._lives.values()]

    def snapshot(self, symbol: str, pos_side: PosSide, mark: Decimal, ts: datetime,
                 leverage: Decimal, margin_mode: MarginMode,
                 liq_price: Decimal | None) -> PositionSnapshot | None:
        """The positions-pane / positions_open row for one life, valued at ``mark``."""
        life = self._lives.get((symbol, pos_side))
        if life is None:
            return None
        # the life itself, not a view, and the exact context's own methods rather than a local
        # context (which copies it): this runs on every mark push of a held instrument
        # one fused multiply-add (exact: the context is wide and traps Inexact): a long's PnL is
        # mark x coins - cost, a short's cost - mark x coins (a flat mark reads 0, never -0)
        ctx = _EXACT
        coins = ctx.multiply(life.contracts, life.contract_size)
        if life.side is PositionSide.LONG:
            unrealized = ctx.fma(mark, coins, life.cost.copy_negate())
        else:
            unrealized = ctx.fma(mark.copy_negate(), coins, life.cost)
        # positional, in the field order of PositionSnapshot: 15 keywords cost a quarter of the
        # construction (tests/unit/core/test_ledger.py checks every field of the result)
        return PositionSnapshot(
            symbol, life.position_id, pos_side, life.side, life.contracts, life.contract_size,
            life.entry, mark, unrealized, life.funding_total, leverage, margin_mode, liq_price,
            life.opened_at, ts,
        )

    def holds_symbol(self, symbol: str) -> bool:
        """Is any life open on ``symbol``? (A mark push of an instrument nobody holds revalues
        nothing, and is told so by three dict look-ups.)"""
        lives = self._lives
        return (symbol, PosSide.NET) in lives or (symbol, PosSide.LONG) in lives or (symbol, PosSide.SHORT) in lives

    def holds(self, symbol: str, pos_side: PosSide = PosSide.NET) -> bool:
        """Is a life open at (symbol, pos_side)? (No view built: the mark-tick path asks often.)"""
        return (symbol, pos_side) in self._lives

    def signed_contracts(self, symbol: str, pos_side: PosSide) -> Decimal:
        """Contracts as OKX's positions item carries them (signed in net mode, positive per
        hedge leg), 0 when flat; compared with every positions push, so no view is built."""
        life = self._lives.get((symbol, pos_side))
        if life is None:
            return ZERO
        return life.contracts * life.side.sign if pos_side == "net" else life.contracts

