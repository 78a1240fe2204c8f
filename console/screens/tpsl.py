"""TpSlScreen: set or move the exchange-side take-profit and stop-loss of one position.

Returns a SetTpSl bound to the position life it was opened on (``position_id``), or None. The
confirmation with the estimated PnL at each trigger follows it (console/trading.py), so this
screen only answers "which prices". An empty field leaves that leg as it is (SetTpSl: None).

Each field is labelled (take-profit, stop-loss) with the side of the mark it belongs on for this
position (long: TP above, SL below; short: the reverse), so the trader need not work it out.
Why it checks the side of the mark: a stop on the wrong side of the mark fires at once (or is
refused by the exchange); the trader learns it here, next to the field, not as a later reject.
The break-even shortcut puts the stop at the entry price, rounded to the tick away from a loss.
"""
from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from console.actions import Scope
from console.bindings import bindings, key_hint
from console.numbers import SizeError, parse_positive
from console.screens.warm import is_prepared
from console.widgets.fmt import Precision, short_symbol
from core.events import SetTpSl
from core.model import Instrument, PositionSide, PositionSnapshot


def plain_price(value: Decimal, inst: Instrument | None) -> str:
    """A price as the trader would type it: the tick's decimals, no thousands separators."""
    if inst is not None and inst.tick_size > 0:
        value = value.quantize(inst.tick_size.normalize())
    return format(value.normalize() if inst is None else value, "f")


def break_even(pos: PositionSnapshot, inst: Instrument | None) -> Decimal:
    """The entry price on the tick grid, rounded so that a stop there never books a loss."""
    if inst is None or inst.tick_size <= 0:
        return pos.entry_price
    tick = inst.tick_size
    rounding = ROUND_CEILING if pos.side is PositionSide.LONG else ROUND_FLOOR
    return (pos.entry_price / tick).to_integral_value(rounding) * tick


def sides(side: PositionSide) -> tuple[str, str]:
    """Where the take-profit and the stop-loss go relative to the mark: above and below for a
    long, the reverse for a short (the dialog labels its fields with it)."""
    return ("above", "below") if side is PositionSide.LONG else ("below", "above")


def check_tp_sl(pos: PositionSnapshot, inst: Instrument | None, tp_text: str,
                sl_text: str) -> tuple[Decimal | None, Decimal | None]:
    """(take_profit, stop_loss) from the typed fields, or SizeError saying what to fix."""
    tp = parse_positive(tp_text, "take profit") if tp_text.strip() else None
    sl = parse_positive(sl_text, "stop loss") if sl_text.strip() else None
    if tp is None and sl is None:
        raise SizeError("type a take-profit or a stop-loss price (an empty field is unchanged)")
    long = pos.side is PositionSide.LONG
    mark = pos.mark_price
    p = Precision.of(inst)
    if tp is not None and (tp <= mark if long else tp >= mark):
        raise SizeError(f"take profit must be {'above' if long else 'below'} the mark "
                        f"({p.px(mark)}) for a {pos.side.value}")
    if sl is not None and (sl >= mark if long else sl <= mark):
        raise SizeError(f"stop loss must be {'below' if long else 'above'} the mark "
                        f"({p.px(mark)}) for a {pos.side.value}: it would fire at once")
    if inst is not None and inst.tick_size > 0:
        for name, price in (("take profit", tp), ("stop loss", sl)):
            if price is not None and price % inst.tick_size != 0:
                raise SizeError(f"{name}: not a multiple of the tick size "
                                f"({inst.tick_size.normalize():f})")
    return tp, sl


class TpSlScreen(ModalScreen["SetTpSl | None"]):
    """One kept screen serves every `T` (console/trading.py): ``show`` gives it the position and
    its current TP/SL, and replaces whatever was typed the time before."""

    BINDINGS: ClassVar[list[BindingType]] = bindings(Scope.TPSL)
    AUTO_FOCUS = "#tp"  # on every showing where nothing is focused yet

    def __init__(self, pos: PositionSnapshot | None = None, inst: Instrument | None = None,
                 current: tuple[Decimal | None, Decimal | None] = (None, None)) -> None:
        super().__init__(classes="dialog-screen")
        self._pos = pos
        self.inst = inst
        self.current = current

    @property
    def pos(self) -> PositionSnapshot:
        if self._pos is None:
            raise RuntimeError("the TP/SL dialog was shown without a position")
        return self._pos

    def show(self, pos: PositionSnapshot, inst: Instrument | None,
             current: tuple[Decimal | None, Decimal | None] = (None, None)) -> None:
        """The position for the next showing of this (kept) screen."""
        self._pos, self.inst, self.current = pos, inst, current

    def on_screen_resume(self) -> None:
        """Each showing says ``show``'s position, its fields replaced (nothing typed before kept)."""
        if not is_prepared(self):  # still being composed, from what it was given
            return
        texts = self._texts()
        for wid, text in texts.items():
            if wid in ("tp", "sl"):
                self.query_one(f"#{wid}", Input).value = text
            else:
                self.query_one(f"#{wid}", Static).update(text)
        self.query_one("#order-error", Static).update("")
        self.set_focus(self.query_one("#tp", Input))

    def _texts(self) -> dict[str, str]:
        """What the dialog says about its position, by widget id (empty before it has one)."""
        p, prec = self._pos, Precision.of(self.inst)
        if p is None:
            return dict.fromkeys(("tpsl-title", "tpsl-facts", "tpsl-sides", "tp-label", "sl-label",
                                  "tp", "sl"), "")
        tp, sl = self.current
        tp_side, sl_side = sides(p.side)
        return {
            "tpsl-title": f"TP/SL {short_symbol(p.symbol)} {p.side.value} {prec.ct(p.contracts)} ct",
            "tpsl-facts": (f"entry {prec.px(p.entry_price)}  mark {prec.px(p.mark_price)}  "
                           f"now: TP {prec.px(tp)}  SL {prec.px(sl)}"),
            "tpsl-sides": f"{p.side.value}: take-profit {tp_side} the mark, stop-loss {sl_side} it",
            "tp-label": f"Take-profit ({tp_side} {prec.px(p.mark_price)})",
            "sl-label": f"Stop-loss ({sl_side} {prec.px(p.mark_price)})",
            "tp": plain_price(tp, self.inst) if tp is not None else "",
            "sl": plain_price(sl, self.inst) if sl is not None else "",
        }

    def compose(self) -> ComposeResult:
        text = self._texts()
        with Vertical(classes="dialog"):
            yield Label(text["tpsl-title"], classes="dialog-title", id="tpsl-title", markup=False)
            yield Static(text["tpsl-facts"], id="tpsl-facts", markup=False)
            yield Static(text["tpsl-sides"], id="tpsl-sides", markup=False)
            with Horizontal(classes="form-row"):
                with Vertical(classes="form-field"):
                    yield Label(text["tp-label"], id="tp-label", markup=False)
                    yield Input(text["tp"], placeholder="empty: unchanged", id="tp")
                with Vertical(classes="form-field"):
                    yield Label(text["sl-label"], id="sl-label", markup=False)
                    yield Input(text["sl"], placeholder="empty: unchanged", id="sl")
            with Horizontal(classes="dialog-buttons"):
                be = Button(f"Stop to break-even ({key_hint(self.app, 'tpsl_break_even', '^t')})",
                            id="break-even")
                be.can_focus = False
                yield be
            yield Static("", id="order-error", markup=False)
            yield Label(f"Enter or {key_hint(self.app, 'tpsl_place', '^s')}: review  "
                        f"{key_hint(self.app, 'tpsl_cancel', 'Esc')}: cancel",
                        classes="dialog-hint", markup=False)

    def action_break_even(self) -> None:
        self.query_one("#sl", Input).value = plain_price(break_even(self.pos, self.inst),
                                                         self.inst)
        self.query_one("#sl", Input).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "break-even":
            self.action_break_even()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_place()

    def action_place(self) -> None:
        try:
            tp, sl = check_tp_sl(self.pos, self.inst, self.query_one("#tp", Input).value,
                                 self.query_one("#sl", Input).value)
        except SizeError as exc:
            self.query_one("#order-error", Static).update(f"✗ {exc}")
            return
        self.dismiss(SetTpSl(self.pos.symbol, self.pos.pos_side, tp, sl, self.pos.position_id))

    def action_cancel(self) -> None:
        self.dismiss(None)
