"""How long to wait before a restart, and how many restarts are too many."""

from __future__ import annotations

import collections
from dataclasses import dataclass

from spoc import settings

__all__ = ["Backoff", "RestartWindow"]


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with jitter and a cap, reset once a worker has stayed up.

    The n-th consecutive restart of a worker waits
    ``min(max, initial * factor ** (n - 1))``, scaled by a random factor
    between ``1 - jitter`` and ``1 + jitter`` (so that workers failing
    together do not restart in lockstep), and never more than `max`. A worker
    that stayed up `reset_after` seconds before it ended starts over at
    `initial`.

    The defaults restart at once at first (0.1 s, 0.2 s, 0.4 s...) and then
    every 10 s or so: a worker waiting out a dependency's outage is back
    within about 10 s of the dependency's return (a 30 s cap could leave it
    down 30 s more), at the cost of one failed attempt per 10 s meanwhile.

    Attributes:
        initial: seconds before the first restart (0 restarts at once).
        factor: growth per consecutive restart (>= 1).
        max: the cap, in seconds.
        jitter: the random spread, a fraction between 0 and 1.
        reset_after: seconds of uptime after which a worker counts as stable.
    """

    initial: float = 0.1
    factor: float = 2.0
    max: float = 10.0
    jitter: float = 0.1
    reset_after: float = 60.0

    def __post_init__(self) -> None:
        for setting in ("initial", "max", "reset_after"):
            settings.seconds("Backoff", setting, getattr(self, setting), zero=True)
        settings.number("Backoff", "factor", self.factor, least=1)
        if not isinstance(self.jitter, int | float) or not 0 <= self.jitter <= 1:
            raise ValueError(f"Backoff: jitter={self.jitter!r} must be a fraction between 0 and 1")

    def delay(self, attempt: int, random: float) -> float:
        """Seconds before consecutive restart number `attempt` (1 for the first); `random` is in [0, 1)."""
        exponent = min(attempt - 1, 1000)  # past the cap long before; keeps the power finite
        base = min(self.max, self.initial * self.factor**exponent)
        return min(self.max, base * (1.0 - self.jitter + 2.0 * self.jitter * random))


class RestartWindow:
    """The restart intensity: at most `limit` restarts within any `within` seconds (None: no limit)."""

    def __init__(self, limit: int | None, within: float) -> None:
        self.limit = limit
        self.within = within
        self._times: collections.deque[float] = collections.deque()

    def allows(self, now: float) -> bool:
        """Whether one more restart at `now` stays within the limit."""
        while self._times and now - self._times[0] >= self.within:
            self._times.popleft()
        return self.limit is None or len(self._times) < self.limit

    def add(self, now: float) -> None:
        self._times.append(now)

    def __len__(self) -> int:
        return len(self._times)
