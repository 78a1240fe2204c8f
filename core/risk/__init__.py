"""Trading control: the pre-trade risk guard, today's PnL watch, the trading state and the kill switch.

One idea per module: ``limits`` (the pre-trade check), ``day`` (today's net PnL and its peak),
``statefile`` (halted, persisted beside the journal), ``sweep`` (canceling and closing at the
exchange, and re-reading what is left), ``control`` (states, halts, kill switch,
TP/SL moves, RiskStatus and RiskEvent publishing).
"""
from core.risk.control import TradingControl
from core.risk.day import DayPnl, day_start_at
from core.risk.limits import RiskGuard, usdt

__all__ = ["DayPnl", "RiskGuard", "TradingControl", "day_start_at", "usdt"]
