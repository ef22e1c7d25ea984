"""Progress of a long run, on a terminal only (stderr)."""
from __future__ import annotations

import sys


class Progress:
    """Progress on a terminal only (stderr), silent otherwise."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.tty = total, 0, sys.stderr.isatty()

    def step(self, what: str) -> None:
        self.done += 1
        if self.tty:
            print(f"\r[{self.done}/{self.total}] {what:60}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.tty:
            print("\r" + " " * 72 + "\r", end="", file=sys.stderr, flush=True)
