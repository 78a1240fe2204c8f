"""A journal folder to damage: its order file, rows rewritten in place."""
from __future__ import annotations

import csv
from pathlib import Path

from core.journal import Journal

ORDERS = "orders_2024-05-01.csv"


def _rewrite(path: Path, edit: object) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = edit(rows)  # type: ignore[operator]
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _journal(directory: Path) -> Journal:
    j = Journal(directory)
    j.open()
    return j
