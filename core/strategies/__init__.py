"""Strategy plug-ins: the built-ins by name, and the trader's own class by file path or module.

Built-ins: ``none`` runs nothing; ``ema_scalper`` trades one-minute EMA trends with an ATR filter,
exchange-side TP/SL, a time stop and risk-budget sizes; ``demo_scalper`` opens coin-flip positions
so every kind of event shows up on the simulator. A strategy only ever acts through
``Engine.submit(..., origin=Origin.STRATEGY)`` (core/strategies/host.py), so its orders carry the
``pds`` clOrdId prefix, pass the engine's pre-trade checks and its closes are journaled with
reason ``strategy``.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.strategies.base import Strategy, StrategyError
    from core.strategies.loader import load_class

__all__ = ["NAMES", "Strategy", "StrategyError", "load_class", "load_strategy", "make_strategy"]

NAMES = ("none", "ema_scalper", "demo_scalper")


def __getattr__(name: str) -> Any:
    """``Strategy``, ``StrategyError`` and ``load_class`` on first use: the config only needs
    ``NAMES``, and `perpdesk report` should not pay for the loader's imports."""
    if name in ("Strategy", "StrategyError"):
        from core.strategies import base

        return getattr(base, name)
    if name == "load_class":
        from core.strategies.loader import load_class

        return load_class
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def make_strategy(name: str, params: Mapping[str, Any] | None = None) -> Strategy | None:
    """The built-in strategy called ``name`` (None for "none"); StrategyError for an unknown name."""
    if name == "none":
        return None
    if name == "demo_scalper":
        from core.strategies.demo_scalper import DemoScalper

        return DemoScalper(params or {})
    if name == "ema_scalper":
        from core.strategies.ema_scalper import EmaScalper

        return EmaScalper(params or {})
    from core.strategies.base import StrategyError

    raise StrategyError(f'unknown strategy "{name}": expected one of ' + ", ".join(f'"{n}"' for n in NAMES))


def load_strategy(settings: Any) -> Strategy | None:
    """The strategy ``[strategy]`` asks for (a ``core.settings.config.StrategySettings``): a built-in by
    ``name``, or the trader's class from ``path`` (a file) or ``module`` ("pkg.mod:Class").
    Raises StrategyError with one line naming the file or module and what is wrong."""
    from core.strategies.base import StrategyError
    from core.strategies.loader import load_class, one_line

    path, module = getattr(settings, "path", None), getattr(settings, "module", None)
    params = settings.params
    if path is None and module is None:
        return make_strategy(settings.name, params)
    cls, where = load_class(path=path, module=module)
    try:
        return cls(params or {})
    except StrategyError:
        raise
    except BaseException as exc:  # noqa: BLE001 - the trader's code, SystemExit too: one line
        raise StrategyError(f"{where}: {cls.__name__}(params) failed: {one_line(exc)}") from None
