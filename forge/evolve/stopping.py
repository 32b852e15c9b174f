"""Early stopping of the evolution when the best fitness stalls (DESIGN.md section 9: stop when
the best fitness moves less than 0.001 over 5 generations).

    progress at an update:  best > reference + min_delta   (the reference is the best that last
                                                            counted as progress; the first update
                                                            sets it)
    stop:                   `patience` updates in a row without progress
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any


class EarlyStop:
    """Counts stalled generations; `update(best)` returns True when the evolution should stop."""

    def __init__(self, patience: int = 5, min_delta: float = 0.001) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise ValueError(f"EarlyStop.patience: got {patience!r}; allowed: an integer >= 1")
        if not (isinstance(min_delta, (int, float)) and math.isfinite(min_delta)
                and min_delta >= 0):
            raise ValueError(f"EarlyStop.min_delta: got {min_delta!r}; allowed: a number >= 0")
        self.patience, self.min_delta = patience, float(min_delta)
        self.reference: float | None = None
        self.stalled = 0

    def update(self, best: float) -> bool:
        """Record this generation's best fitness; True once `patience` updates stalled.

        A NaN best counts as a stall (it is never progress)."""
        if self.reference is None and not math.isnan(best):
            self.reference, self.stalled = float(best), 0
        elif not math.isnan(best) and best > self.reference + self.min_delta:
            self.reference, self.stalled = float(best), 0
        else:
            self.stalled += 1
        return self.stopped

    @property
    def stopped(self) -> bool:
        """Whether `patience` updates in a row made no progress."""
        return self.stalled >= self.patience

    def to_dict(self) -> dict[str, Any]:
        """The state as plain data (a -inf reference is kept as the string '-inf')."""
        ref = self.reference
        return {"patience": self.patience, "min_delta": self.min_delta, "stalled": self.stalled,
                "reference": ref if ref is None or math.isfinite(ref) else str(ref)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EarlyStop:
        """An EarlyStop in the saved state; ValueError naming a missing or bad key."""
        for key in ("patience", "min_delta", "stalled", "reference"):
            if key not in data:
                raise ValueError(f"EarlyStop.{key}: missing key")
        out = cls(data["patience"], data["min_delta"])
        stalled = data["stalled"]
        if isinstance(stalled, bool) or not isinstance(stalled, int) or stalled < 0:
            raise ValueError(f"EarlyStop.stalled: got {stalled!r}; allowed: an integer >= 0")
        ref = data["reference"]
        try:
            out.reference = None if ref is None else float(ref)
        except (TypeError, ValueError):
            raise ValueError(f"EarlyStop.reference: got {ref!r}; allowed: a number or null") \
                from None
        out.stalled = stalled
        return out
