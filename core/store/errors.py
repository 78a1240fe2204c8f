"""StoreError: one plain line about the store, exit 2 (the base of every expected store failure)."""
from __future__ import annotations

from core.support.errors import PerpdeskError


class StoreError(PerpdeskError):
    """The store cannot be reached, is not initialised, or a role lacks a right: one line."""
