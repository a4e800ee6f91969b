"""Progress callbacks: one helper maps a stage's own 0..1 onto its share of the whole run."""

from __future__ import annotations

from mattestudio.types import ProgressFn


def scaled(progress: ProgressFn | None, lo: float, hi: float) -> ProgressFn | None:
    """``progress`` seen through a stage that covers [lo, hi] of the run (None stays None).

    The stage reports 0..1; values outside are clamped so a stage never moves the bar out of its
    share.
    """
    if progress is None:
        return None
    outer = progress

    def report(fraction: float, message: str) -> None:
        outer(lo + (hi - lo) * min(max(fraction, 0.0), 1.0), message)

    return report
