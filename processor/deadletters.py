"""Dead letters as the replay sees them: which go back, with what headers.

A dead letter holds the request it failed, byte for byte (key, value,
headers). Replaying puts that request back on the requests topic with one
header changed: ``cxone-replay-count``, one more than the count the request
carried. The processor copies a request's headers into its dead letter, so a
request that fails again comes back with its count, and the loop guard can
refuse to send it once more than ``--max-replays`` times.

Nothing here talks to Kafka; ``processor.replay`` does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from processor import schemas
from processor.outcomes import Reason
from processor.records import Headers

REPLAY_COUNT_HEADER = "cxone-replay-count"
# The schema's default symbol, which a reader sees for a reason it predates.
UNSPECIFIED = "UNSPECIFIED"
REASONS = (UNSPECIFIED, *(reason.value for reason in Reason))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One decoded dead letter and where it sits on the dead-letter topic."""

    partition: int
    offset: int
    reason: str
    action_id: str | None
    failed_at: datetime
    key: bytes | None
    value: bytes | None
    headers: Headers


def decode(
    reader: schemas.Reader, partition: int, offset: int, value: bytes | None
) -> DeadLetter:
    """The dead letter in ``value``; raises ``InvalidRequest`` when unreadable."""
    fields = reader.read(value or b"", schemas.load("dead_letter"))
    return from_fields(partition, offset, fields)


def from_fields(partition: int, offset: int, fields: Mapping[str, Any]) -> DeadLetter:
    failed_at: datetime = fields["failed_at"]
    return DeadLetter(
        partition=partition,
        offset=offset,
        reason=str(fields["reason"]),
        action_id=fields["action_id"],
        # fastavro reads timestamp-millis as an aware UTC datetime.
        failed_at=failed_at.astimezone(UTC),
        key=fields["original_key"],
        value=fields["original_value"],
        headers=[(h["key"], h["value"]) for h in fields["original_headers"]],
    )


def replay_count(headers: Headers) -> int | None:
    """Times the request was replayed already: 0 without the header.

    ``None`` when a count header is there but is not a whole number; the loop
    guard then cannot tell, and holds the record back.
    """
    counts = [value for name, value in headers if name == REPLAY_COUNT_HEADER]
    if not counts:
        return 0

    parsed: list[int] = []
    for value in counts:
        text = (value or b"").decode("ascii", "replace").strip()
        if not text.isdigit():
            return None
        parsed.append(int(text))
    return max(parsed)


def replayed_headers(headers: Headers, count: int) -> Headers:
    """The original headers in their order, with the count header replaced."""
    kept = [(name, value) for name, value in headers if name != REPLAY_COUNT_HEADER]
    return [*kept, (REPLAY_COUNT_HEADER, str(count).encode())]


@dataclass(frozen=True)
class Selection:
    """Which dead letters a replay considers; an empty filter admits all."""

    reasons: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def admits(self, letter: DeadLetter) -> bool:
        if self.reasons and letter.reason not in self.reasons:
            return False
        if self.actions and letter.action_id not in self.actions:
            return False
        if self.since is not None and letter.failed_at < self.since:
            return False
        return self.until is None or letter.failed_at <= self.until


class Verdict(StrEnum):
    """What happens to one dead letter."""

    SEND = "sent"
    SKIP = "skipped"
    FILTER = "filtered"


def judge(letter: DeadLetter, selection: Selection, max_replays: int) -> Verdict:
    """Filters first: a letter filtered out is not a loop-guard skip."""
    if not selection.admits(letter):
        return Verdict.FILTER
    count = replay_count(letter.headers)
    if count is None or count >= max_replays:
        return Verdict.SKIP
    return Verdict.SEND


@dataclass
class Tally:
    """Counts of one replay, overall and by reason."""

    by_reason: dict[Verdict, Counter[str]] = field(
        default_factory=lambda: {verdict: Counter() for verdict in Verdict}
    )
    undecodable: int = 0

    def count(self, verdict: Verdict, reason: str) -> None:
        self.by_reason[verdict][reason] += 1

    def total(self, verdict: Verdict) -> int:
        return sum(self.by_reason[verdict].values())

    def add(self, other: Tally) -> None:
        for verdict in Verdict:
            self.by_reason[verdict].update(other.by_reason[verdict])
        self.undecodable += other.undecodable

    def handled(self) -> int:
        """Dead letters read, whatever became of them."""
        return sum(map(self.total, Verdict)) + self.undecodable

    def reasons(self) -> list[str]:
        seen = set().union(*(counts.keys() for counts in self.by_reason.values()))
        return sorted(seen)

    def as_dict(self) -> dict[str, Any]:
        return {
            **{verdict.value: self.total(verdict) for verdict in Verdict},
            "undecodable": self.undecodable,
            "by_reason": {
                reason: {v.value: self.by_reason[v][reason] for v in Verdict}
                for reason in self.reasons()
            },
        }


def summary(tally: Tally, *, dry_run: bool) -> list[str]:
    """The report's lines: totals, then one line per reason seen."""
    sent = "would send" if dry_run else "sent"
    lines = [
        f"{sent} {tally.total(Verdict.SEND)}, "
        f"skipped {tally.total(Verdict.SKIP)} (loop guard), "
        f"filtered out {tally.total(Verdict.FILTER)}, "
        f"undecodable {tally.undecodable}"
    ]
    width = max((len(reason) for reason in tally.reasons()), default=0)
    for reason in tally.reasons():
        counts = [tally.by_reason[v][reason] for v in Verdict]
        lines.append(
            f"  {reason:<{width}}  {sent} {counts[0]}, skipped {counts[1]}, "
            f"filtered out {counts[2]}"
        )
    return lines


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; one without an offset is taken as UTC."""
    moment = datetime.fromisoformat(text.strip())
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def unique(values: Sequence[str] | None) -> frozenset[str]:
    return frozenset(values or ())
