"""Loading the trader's own Strategy class from a file path or an importable module.

Why its own module: this is the one place that runs code perpdesk does not ship, so every way it
can fail (no file, a syntax error, an import error, ``SystemExit`` or ``KeyboardInterrupt`` raised
at import, no Strategy subclass, two of them, callbacks that are not ``async def``) ends as one
StrategyError line naming the file or module (exit 2), before the engine connects, instead of a
traceback, a process that ends with exit 0 and no word, or a strategy that dies at its first
callback.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from types import ModuleType

from core.strategies.base import Strategy, StrategyError

CALLBACKS = ("on_start", "on_stop", "on_candle", "on_mark", "on_fill", "on_close", "on_order", "on_tick")


def split_target(text: str) -> tuple[str, str | None]:
    """``"pkg.mod:MyClass"`` -> ("pkg.mod", "MyClass"); ``"pkg.mod"`` -> ("pkg.mod", None)."""
    head, sep, tail = text.partition(":")
    return (head, tail) if sep else (text, None)


def load_class(*, path: Path | str | None = None, module: str | None = None) -> tuple[type[Strategy], str]:
    """The Strategy subclass in the file ``path`` (it must define exactly one) or named by
    ``module`` (``pkg.mod:Class``, or ``pkg.mod`` defining exactly one), and how to name it in
    messages."""
    if path is not None:
        mod = _import_file(Path(path))
        where, cls_name = Path(path).name, None
    elif module is not None:
        where, cls_name = split_target(module)
        mod = _import_module(where)
    else:
        raise StrategyError("[strategy] needs a name, a path or a module")
    return _pick(mod, cls_name, where), where


def one_line(exc: BaseException) -> str:
    if isinstance(exc, SyntaxError):
        return f"SyntaxError line {exc.lineno}: {exc.msg}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _import_file(file: Path) -> ModuleType:
    if not file.is_file():
        raise StrategyError(f"[strategy] path: no strategy file at {file}")
    digest = hashlib.sha1(str(file.resolve()).encode()).hexdigest()[:10]
    name = f"perpdesk_user_strategy_{file.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:
        raise StrategyError(f"{file.name}: cannot be loaded as a Python file")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod  # dataclasses and pickling look the module up by name
    folder = str(file.resolve().parent)
    if folder not in sys.path:
        sys.path.append(folder)  # helpers beside the file import by name (appended: never shadows)
    try:
        spec.loader.exec_module(mod)
    except BaseException as exc:  # noqa: BLE001 - the trader's code, SystemExit included: one line
        sys.modules.pop(name, None)
        raise StrategyError(f"{file.name}: cannot be loaded: {one_line(exc)}") from None
    return mod


def _import_module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        raise StrategyError(f'[strategy] module "{name}": no module named "{exc.name}" '
                            "(is its folder on PYTHONPATH?)") from None
    except BaseException as exc:  # noqa: BLE001 - SystemExit at import too: one line, exit 2
        raise StrategyError(f'[strategy] module "{name}": cannot be loaded: {one_line(exc)}') from None


def _pick(mod: ModuleType, cls_name: str | None, where: str) -> type[Strategy]:
    if cls_name is not None:
        cls = getattr(mod, cls_name, None)
        if cls is None:
            found = ", ".join(_defined(mod)) or "none"
            raise StrategyError(f"{where}: no class {cls_name} (Strategy subclasses there: {found})")
        if not (isinstance(cls, type) and issubclass(cls, Strategy)):
            raise StrategyError(f"{where}: {cls_name} is not a subclass of core.strategies.base.Strategy")
    else:
        defined = _defined(mod)
        if not defined:
            raise StrategyError(f"{where}: defines no subclass of core.strategies.base.Strategy")
        if len(defined) > 1:
            raise StrategyError(f"{where}: defines several strategies ({', '.join(defined)}); "
                                f'name one, e.g. "{where}:{defined[0]}"')
        cls = getattr(mod, defined[0])
    for callback in CALLBACKS:
        if not inspect.iscoroutinefunction(getattr(cls, callback)):
            raise StrategyError(f"{where}: {cls.__name__}.{callback} must be an async def")
    return cls


def _defined(mod: ModuleType) -> list[str]:
    """Strategy subclasses defined in ``mod`` itself (imported ones do not count)."""
    return [n for n, v in vars(mod).items()
            if isinstance(v, type) and issubclass(v, Strategy) and v is not Strategy
            and v.__module__ == mod.__name__]
