"""The simulated API's global rate limit: a token bucket on an injected clock."""

from __future__ import annotations

from collections.abc import Callable


class TokenBucket:
    """Admits ``rate`` requests a second on average, ``burst`` at once.

    The bucket starts full. ``take`` either spends a token and returns 0, or
    returns the seconds until the next token, which is what a ``Retry-After``
    honestly promises.
    """

    def __init__(self, rate: float, burst: float, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._stamp = clock()

    def take(self) -> float:
        """Spend one token, or say how long until one is there."""
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / self.rate
