"""How a job ends: submitted, or failed with a dead-letter reason."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from processor.cxone import SubmittedJob


class Reason(StrEnum):
    """Why a job request went to the dead letters (the Avro enum's symbols)."""

    INVALID_REQUEST = "INVALID_REQUEST"
    ACTION_NOT_PUBLISHED = "ACTION_NOT_PUBLISHED"
    UNKNOWN_ACTION = "UNKNOWN_ACTION"
    REJECTED = "REJECTED"
    RETRIES_EXHAUSTED = "RETRIES_EXHAUSTED"


@dataclass(frozen=True, slots=True)
class Submitted:
    """CXone accepted the job."""

    job: SubmittedJob
    attempts: int
    latency_ms: float


@dataclass(frozen=True, slots=True)
class Failed:
    """The job cannot be submitted; it goes to the dead letters."""

    reason: Reason
    error: str
    http_status: int | None
    attempts: int


Outcome = Submitted | Failed
