"""Learning-rate schedules as pure functions of the optimiser step (so a resumed run continues exactly).

``learning_rate_at(step, …)`` is evaluated before every optimiser step; nothing about the schedule is
stored beyond the step counter that every checkpoint already holds.
"""
from __future__ import annotations

import math


def learning_rate_at(step: int, total_steps: int, base: float, *, schedule: str = "constant",
                     warmup_steps: int = 0, min_fraction: float = 0.0) -> float:
    """Learning rate of optimiser step ``step`` (0-based) of ``total_steps``.

    * warm-up: linear from ``base / warmup_steps`` to ``base`` over the first ``warmup_steps`` steps;
    * then ``constant`` (``base``) or ``cosine``: from ``base`` down to ``min_fraction · base`` at
      the last step, half a cosine period over the steps after the warm-up.
    """
    if schedule not in ("constant", "cosine"):
        raise ValueError(f"unknown learning-rate schedule {schedule!r}")
    if warmup_steps > 0 and step < warmup_steps:
        return base * (step + 1) / warmup_steps
    if schedule == "constant":
        return base
    span = max(total_steps - warmup_steps - 1, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return base * (min_fraction + (1.0 - min_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress)))
