"""Prometheus durations ("15m", "1h30m", "7d") and the step of a range query."""

from __future__ import annotations

import re

_UNITS = (("y", 365 * 86400), ("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1), ("ms", 0.001))
_DURATION = re.compile("".join(rf"(?:(\d{{1,9}}){unit})?" for unit, _ in _UNITS))

MIN_RANGE = 60
MAX_RANGE = 7 * 86400
MIN_STEP = 5
#: Prometheus refuses range queries of more than 11,000 points per series.
MAX_POINTS = 11_000
DEFAULT_POINTS = 120


class DurationError(ValueError):
    """A range or step the API cannot use; the message says what is accepted."""


def parse_duration(text: str, name: str) -> float:
    """Seconds in a Prometheus duration such as 15m or 1h30m."""
    match = _DURATION.fullmatch(text)
    if not text or not match or not any(match.groups()):
        raise DurationError(f"{name} {text!r} is not a duration: use a number and a unit (ms, s, m, h, d, w, y), "
                            "e.g. 15m, 1h or 1h30m")
    return sum(int(value) * seconds for value, (_, seconds) in zip(match.groups(), _UNITS, strict=True) if value)


def window(range_text: str, step_text: str | None) -> tuple[int, int]:
    """(range, step) in whole seconds: range 1m..7d, step at least 5s and at most 11,000 points."""
    seconds = parse_duration(range_text, "range")
    if not MIN_RANGE <= seconds <= MAX_RANGE:
        raise DurationError(f"range {range_text!r} is out of bounds: use 1m to 7d")
    span = int(seconds)
    if step_text is None:
        return span, max(MIN_STEP, round(span / DEFAULT_POINTS))
    step_seconds = parse_duration(step_text, "step")
    if step_seconds < MIN_STEP:
        raise DurationError(f"step {step_text!r} is too small: use 5s or more")
    if step_seconds > span:
        raise DurationError(f"step {step_text!r} is longer than the range {range_text!r}")
    step = int(step_seconds)
    if span / step > MAX_POINTS:
        raise DurationError(f"step {step_text!r} gives more than {MAX_POINTS} points over {range_text!r}: "
                            f"use a step of at least {-(-span // MAX_POINTS)}s")
    return span, step
