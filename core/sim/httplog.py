"""Where aiohttp's own complaints about a request go: one line in our log, never a traceback.

Why: aiohttp reports a request it could not even parse (a request line over 8 KB, a broken
header) or a handler that raised through the standard ``logging`` module with the traceback, and
with no handler configured Python prints that on the terminal of ``perpdesk sim`` or over the
console. The simulator hands aiohttp this logger instead: the message and the exception's type and
text, as one loguru line (the log file once the app set it up).
"""
from __future__ import annotations

import logging

from loguru import logger


class _OneLine(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        detail = f": {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}" if exc else ""
        logger.warning("SIM HTTP {}{}", record.getMessage(), detail[:300])


LOGGER = logging.getLogger("perpdesk.sim.http")
LOGGER.propagate = False  # not to the root logger (nor Python's last-resort stderr printer)
LOGGER.addHandler(_OneLine())
