"""The contract every long job in the core follows: report progress, honour cancel.

A core function takes ``progress(fraction, stage)`` and ``cancelled()`` callables and knows
nothing of Qt; ``medview.ui.workers`` wraps any such function for the GUI.
"""

from __future__ import annotations

from typing import Callable, Optional

ProgressFn = Callable[[float, str], None]
CancelledFn = Callable[[], bool]


class Cancelled(Exception):
    """Raised by a core job when its ``cancelled()`` check returns True."""


def no_progress(fraction: float, stage: str) -> None:  # noqa: ARG001 - callback signature
    return None


def never_cancelled() -> bool:
    return False


def check_cancelled(cancelled: Optional[CancelledFn]) -> None:
    if cancelled is not None and cancelled():
        raise Cancelled("cancelled by user")
