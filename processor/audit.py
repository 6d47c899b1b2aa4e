"""Audit event types: what the processor tells downstream consumers it did.

Each type is declared once here, with when it is emitted. The values are the
symbols of the ``AuditEventType`` enum in ``schemas/audit_event.avsc``.
"""

from __future__ import annotations

from enum import StrEnum


class AuditType(StrEnum):
    PROCESSOR_STARTED = "PROCESSOR_STARTED"
    """The processor connected and is about to consume."""

    PROCESSOR_STOPPED = "PROCESSOR_STOPPED"
    """The processor finished its shutdown (details: the reason)."""

    PARTITIONS_ASSIGNED = "PARTITIONS_ASSIGNED"
    """The group gave this instance partitions (details: which)."""

    PARTITIONS_REVOKED = "PARTITIONS_REVOKED"
    """Partitions left this instance (details: which, and whether lost)."""

    JOB_STARTED = "JOB_STARTED"
    """A valid request began processing."""

    JOB_COMPLETED = "JOB_COMPLETED"
    """CXone accepted the job (details: job id, attempts, latency)."""

    JOB_RETRIED = "JOB_RETRIED"
    """An attempt failed with a fault worth retrying (details: attempt, wait, error)."""

    JOB_DEAD_LETTERED = "JOB_DEAD_LETTERED"
    """The request went to the dead letters (details: reason, error)."""

    THROTTLED = "THROTTLED"
    """CXone answered 429; submissions are held (details: the wait)."""

    RESUMED = "RESUMED"
    """A hold ended and submissions go on (details: how long it lasted)."""

    PARTITIONS_PAUSED = "PARTITIONS_PAUSED"
    """Consumption paused (details: why: throttled, breaker_open, buffer_full)."""

    PARTITIONS_RESUMED = "PARTITIONS_RESUMED"
    """Consumption resumed (details: why it had paused, for how long)."""

    BREAKER_OPENED = "BREAKER_OPENED"
    """Most recent submissions failed: only probes go out until one succeeds."""

    BREAKER_CLOSED = "BREAKER_CLOSED"
    """A probe succeeded: submissions go on."""

    DRAIN_RATE = "DRAIN_RATE"
    """Once per window: jobs finished per minute (details: rate, window)."""
