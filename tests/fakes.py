"""Fakes shared by the fast tests: time that moves only when told to, and a
CXone configuration pointing nowhere."""

from __future__ import annotations

from processor.settings import Settings, load

CXONE_BASE = "http://cxone.test"


class FakeTime:
    """A clock tests move by hand, and an async sleep that moves it instead of waiting.

    Pass the instance (or its ``clock``) where a clock is wanted, and
    ``sleep`` where an async sleep is.
    """

    def __init__(self, now: float = 0.0) -> None:
        self.now = now
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def cxone_settings() -> Settings:
    """Settings with the CXone essentials only (the secret is ``top-secret``)."""
    return load(
        environ={
            "CXONE_BASE_URL": CXONE_BASE,
            "CXONE_CLIENT_ID": "id",
            "CXONE_CLIENT_SECRET": "top-secret",
        }
    )
