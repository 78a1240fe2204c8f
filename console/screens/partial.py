"""PartialCloseScreen: choose how much of a position to close (25/50/75% or a typed size).

Returns the number of contracts, validated against the position size and the lot size, or None.
The confirmation with the estimated PnL follows it (the app pushes ConfirmScreen next), so this
screen only answers "how much".
"""
from __future__ import annotations

import re
from decimal import Decimal
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.actions import Scope
from console.bindings import bindings
from console.numbers import SizeError, parse_number, quote
from console.screens.warm import is_prepared
from console.widgets.fmt import Precision, short_symbol
from core.model import Instrument, PositionSnapshot
from core.money import quantize_down

PERCENTS = (25, 50, 75)
_SIZE_RE = re.compile(r"^\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z%]*)\s*$", re.ASCII)
_CONTRACT_UNITS = ("", "c", "ct", "cts", "contract", "contracts")

__all__ = ["PERCENTS", "PartialCloseScreen", "SizeError", "close_contracts"]


def close_contracts(text: str, pos: PositionSnapshot, inst: Instrument | None,
                    unit_name: str = "contracts") -> Decimal:
    """Contracts to close for ``text``: "50%", "3" / "3 ct" (contracts) or "0.03 BTC" / "0.03 coins".

    Percentages round down to the lot size; typed sizes must already be a multiple of it.
    ``unit_name`` is what the refusals call a contract (the coin, where contracts are coins).
    """
    match = _SIZE_RE.match(text)
    if not match:
        if not text.isascii():
            parse_number(text, "size")  # raises its "digits 0-9 only" message
        raise SizeError('type a size such as "50%", "3" (contracts) or "0.03 coins"')
    number = parse_number(match.group(1), "size")
    unit = match.group(2).lower()
    lot = inst.lot_size if inst is not None else Decimal(0)
    contract_size = inst.contract_size if inst is not None else pos.contract_size
    base = (inst.base_ccy if inst is not None and inst.base_ccy else
            pos.symbol.split("/")[0]).lower()
    if unit == "%":
        if not 0 < number <= 100:
            raise SizeError("a percentage from 0 to 100")
        contracts = quantize_down(pos.contracts * number / 100, lot)
    elif unit in _CONTRACT_UNITS:
        contracts = number
    elif unit in ("coin", "coins", base):
        contracts = number / contract_size
    else:
        raise SizeError(f'unknown unit "{quote(match.group(2))}": use %, ct or {base.upper()}')
    if contracts <= 0:
        raise SizeError("that is less than one lot")
    if lot > 0 and quantize_down(contracts, lot) != contracts:
        raise SizeError(f"not a multiple of the lot size ({lot.normalize():f} {unit_name})")
    if contracts > pos.contracts:
        raise SizeError(f"more than the position ({pos.contracts.normalize():f} {unit_name})")
    if inst is not None and contracts < inst.min_size and contracts != pos.contracts:
        raise SizeError(f"below the minimum order size ({inst.min_size.normalize():f} {unit_name})")
    return contracts


class PartialCloseScreen(ModalScreen["Decimal | None"]):
    """One kept screen serves every `p` (console/trading.py): ``show`` gives it the position
    and clears what was typed the time before."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.PARTIAL)
    AUTO_FOCUS = "#size"  # on every showing where nothing is focused yet

    def __init__(self, pos: PositionSnapshot | None = None, inst: Instrument | None = None, *,
                 coins_only: bool = False) -> None:
        super().__init__(classes="dialog-screen")
        self._pos = pos
        self.inst = inst
        self.prec = Precision.of(inst)
        self.coins_only = coins_only  # contracts are coins (Bybit): the size is said once, in coins

    @property
    def pos(self) -> PositionSnapshot:
        if self._pos is None:
            raise RuntimeError("the partial close dialog was shown without a position")
        return self._pos

    def show(self, pos: PositionSnapshot, inst: Instrument | None, *, coins_only: bool = False) -> None:
        """The position for the next showing of this (kept) screen."""
        self._pos, self.inst, self.prec, self.coins_only = pos, inst, Precision.of(inst), coins_only

    def on_screen_resume(self) -> None:
        """Each showing says ``show``'s position and clears the size typed the time before."""
        if not is_prepared(self):  # still being composed, from what it was given
            return
        self.query_one(".dialog-title", Label).update(self._title())
        size = self.query_one("#size", Input)
        size.value = ""
        size.placeholder = self._placeholder()
        self._preview("")
        self.set_focus(size)

    @property
    def _base(self) -> str:
        return self.pos.symbol.split("/")[0] if self._pos is not None else ""

    def _amount(self, contracts: Decimal) -> str:
        coins = f"{self.prec.coin(contracts * self.pos.contract_size)} {self._base}"
        return coins if self.coins_only else f"{self.prec.ct(contracts)} ct ({coins})"

    def _contracts(self, text: str) -> Decimal:
        return close_contracts(text, self.pos, self.inst, self._base if self.coins_only else "contracts")

    def _title(self) -> str:
        p = self._pos
        if p is None:
            return "Partial close"
        return f"Partial close {short_symbol(p.symbol)} {p.side.value} {self._amount(p.contracts)}"

    def _placeholder(self) -> str:
        return (f"size: 50% or 0.03 {self._base}" if self.coins_only
                else "size: 50%, 3 (contracts) or 0.03 coins")

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(self._title(), classes="dialog-title")
            with Horizontal(classes="dialog-buttons"):
                for pct in PERCENTS:
                    yield Button(f"{pct}%", id=f"pct-{pct}")
            yield Input(placeholder=self._placeholder(), id="size")
            yield Static("", id="size-preview", markup=False)

    def _preview(self, text: str, error: bool = False) -> None:
        preview = self.query_one("#size-preview", Static)
        preview.set_class(error, "error")
        preview.update(text)

    def on_input_changed(self, event: Input.Changed) -> None:
        if not event.value.strip() or self._pos is None:
            self._preview("")
            return
        try:
            contracts = self._contracts(event.value)
        except SizeError as exc:
            self._preview(f"✗ {exc}", error=True)
            return
        self._preview(f"close {self._amount(contracts)}, "
                      f"remaining {self._amount(self.pos.contracts - contracts)}")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        try:
            contracts = self._contracts(event.value)
        except SizeError as exc:
            self.notify(str(exc), severity="error")
            return
        self.dismiss(contracts)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        pct = (event.button.id or "").removeprefix("pct-")
        try:
            self.dismiss(self._contracts(f"{pct}%"))
        except SizeError as exc:
            self.notify(str(exc), severity="error")

    def action_cancel(self) -> None:
        self.dismiss(None)
