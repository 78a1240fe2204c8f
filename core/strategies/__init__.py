"""Strategy plug-ins: ``none`` runs nothing; ``demo_scalper`` trades small sizes on the simulator.

A strategy only ever acts through ``Engine.submit(..., origin=Origin.STRATEGY)``, so its orders
carry the ``pds`` clOrdId prefix and its closes are journaled with reason ``strategy``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.strategies.base import Strategy, StrategyError

__all__ = ["Strategy", "StrategyError", "make_strategy", "NAMES"]

NAMES = ("none", "demo_scalper")


def make_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy | None:
    """The strategy called ``name`` (None for "none"); StrategyError for an unknown name."""
    if name == "none":
        return None
    if name == "demo_scalper":
        from core.strategies.demo_scalper import DemoScalper

        return DemoScalper(params or {})
    raise StrategyError(f'unknown strategy "{name}": expected one of ' + ", ".join(f'"{n}"' for n in NAMES))
