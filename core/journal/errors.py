"""The journal's one error type (its own module so the schema, reader and writer can all raise it)."""
from __future__ import annotations

from core.support.errors import PerpdeskError


class JournalError(PerpdeskError):
    """A journal file could not be read or written; the message names the file and the cause.

    ``message`` is the one line a front end prints (``perpdesk`` prints it and exits with
    ``exit_code``, 2), never a traceback.
    """
