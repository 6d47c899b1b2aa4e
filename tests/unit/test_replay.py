"""The replay's pure logic: decoding, filters, the loop guard's count, the report."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from processor import deadletters, schemas
from processor.deadletters import (
    REPLAY_COUNT_HEADER,
    DeadLetter,
    Selection,
    Tally,
    Verdict,
    judge,
    replay_count,
    replayed_headers,
)
from processor.errors import InvalidRequest

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def letter(
    reason: str = "ACTION_NOT_PUBLISHED",
    action_id: str | None = "action_a",
    failed_at: datetime = NOON,
    headers: list[tuple[str, bytes | None]] | None = None,
) -> DeadLetter:
    return DeadLetter(
        partition=0,
        offset=7,
        reason=reason,
        action_id=action_id,
        failed_at=failed_at,
        key=b"k",
        value=b"{}",
        headers=headers or [],
    )


def fields(**changes: Any) -> dict[str, Any]:
    record = {
        "reason": "UNKNOWN_ACTION",
        "error": "404",
        "http_status": 404,
        "attempts": 1,
        "request_id": "r-1",
        "action_id": "action_x",
        "original_key": b"key-1",
        "original_value": b'{"request_id": "r-1"}',
        "original_headers": [
            {"key": "traceparent", "value": b"00-abc"},
            {"key": "empty", "value": None},
        ],
        "source_topic": "requests",
        "source_partition": 2,
        "source_offset": 40,
        "failed_at": NOON,
        "instance_id": "processor-1",
    }
    return {**record, **changes}


def test_a_request_never_replayed_counts_zero() -> None:
    assert replay_count([("traceparent", b"00-abc")]) == 0


def test_the_count_is_read_from_its_header_and_the_highest_wins() -> None:
    assert replay_count([(REPLAY_COUNT_HEADER, b"2")]) == 2
    assert replay_count([(REPLAY_COUNT_HEADER, b"1"), (REPLAY_COUNT_HEADER, b"3")]) == 3


@pytest.mark.parametrize("value", [b"two", b"-1", b"", None, b"1.5"])
def test_an_unreadable_count_is_none(value: bytes | None) -> None:
    assert replay_count([(REPLAY_COUNT_HEADER, value)]) is None


def test_replayed_headers_keep_the_others_in_order_and_replace_the_count() -> None:
    original: list[tuple[str, bytes | None]] = [
        ("traceparent", b"00-abc"),
        (REPLAY_COUNT_HEADER, b"1"),
        ("tenant", None),
        ("tenant", b"second"),
    ]

    assert replayed_headers(original, 2) == [
        ("traceparent", b"00-abc"),
        ("tenant", None),
        ("tenant", b"second"),
        (REPLAY_COUNT_HEADER, b"2"),
    ]


def test_the_loop_guard_sends_below_the_limit_and_skips_at_it() -> None:
    everything = Selection()

    assert judge(letter(), everything, 3) is Verdict.SEND
    assert judge(letter(headers=[(REPLAY_COUNT_HEADER, b"2")]), everything, 3) is (
        Verdict.SEND
    )
    assert judge(letter(headers=[(REPLAY_COUNT_HEADER, b"3")]), everything, 3) is (
        Verdict.SKIP
    )
    assert judge(letter(headers=[(REPLAY_COUNT_HEADER, b"9")]), everything, 3) is (
        Verdict.SKIP
    )


def test_a_count_that_cannot_be_read_is_held_back() -> None:
    garbled = letter(headers=[(REPLAY_COUNT_HEADER, b"lots")])

    assert judge(garbled, Selection(), 3) is Verdict.SKIP


def test_a_letter_filtered_out_is_not_counted_as_a_loop_guard_skip() -> None:
    exhausted = letter(headers=[(REPLAY_COUNT_HEADER, b"3")])

    assert judge(exhausted, Selection(reasons=frozenset({"REJECTED"})), 3) is (
        Verdict.FILTER
    )


def test_reason_and_action_filters_each_admit_any_of_their_values() -> None:
    selection = Selection(
        reasons=frozenset({"ACTION_NOT_PUBLISHED", "UNKNOWN_ACTION"}),
        actions=frozenset({"action_a", "action_b"}),
    )

    assert selection.admits(letter("UNKNOWN_ACTION", "action_b"))
    assert not selection.admits(letter("REJECTED", "action_a"))
    assert not selection.admits(letter("UNKNOWN_ACTION", "action_c"))
    assert not selection.admits(letter("INVALID_REQUEST", None))
    assert Selection().admits(letter("INVALID_REQUEST", None))


def test_the_time_window_includes_both_of_its_ends() -> None:
    window = Selection(since=NOON, until=NOON + timedelta(hours=1))

    assert window.admits(letter(failed_at=NOON))
    assert window.admits(letter(failed_at=NOON + timedelta(hours=1)))
    assert not window.admits(letter(failed_at=NOON - timedelta(milliseconds=1)))
    assert not window.admits(letter(failed_at=NOON + timedelta(hours=1, seconds=1)))
    assert Selection(since=NOON).admits(letter(failed_at=NOON + timedelta(days=9)))


def test_times_are_iso_8601_and_utc_when_they_have_no_offset() -> None:
    assert deadletters.parse_time("2026-03-01T12:00:00Z") == NOON
    assert deadletters.parse_time("2026-03-01T14:00:00+02:00") == NOON
    assert deadletters.parse_time("2026-03-01T12:00") == NOON
    assert deadletters.parse_time("2026-03-01T12:00").tzinfo == UTC
    with pytest.raises(ValueError):
        deadletters.parse_time("yesterday")


def test_a_single_object_dead_letter_decodes_to_its_original_request() -> None:
    codec = schemas.SingleObjectCodec(schemas.load("dead_letter"))

    decoded = deadletters.decode(schemas.Reader(), 3, 11, codec.encode(fields()))

    assert (decoded.partition, decoded.offset) == (3, 11)
    assert decoded.reason == "UNKNOWN_ACTION"
    assert decoded.action_id == "action_x"
    assert decoded.failed_at == NOON
    assert decoded.key == b"key-1"
    assert decoded.value == b'{"request_id": "r-1"}'
    assert decoded.headers == [("traceparent", b"00-abc"), ("empty", None)]


def test_a_registry_framed_dead_letter_decodes_through_the_registry() -> None:
    registry = schemas.registry_client("mock://replay-unit")
    codec = schemas.register(registry, "deadletters", schemas.load("dead_letter"))
    east = timezone(timedelta(hours=5))

    decoded = deadletters.decode(
        schemas.Reader(registry),
        0,
        0,
        codec.encode(fields(failed_at=NOON.astimezone(east), original_key=None)),
    )

    assert decoded.failed_at == NOON
    assert decoded.failed_at.tzinfo == UTC
    assert decoded.key is None
    assert decoded.reason == "UNKNOWN_ACTION"


@pytest.mark.parametrize(
    "value",
    [None, b"not avro", b"\xc3\x01" + bytes(8) + b"\x00"],
    ids=["no-value", "text", "unknown-fingerprint"],
)
def test_what_is_no_dead_letter_is_an_invalid_request(value: bytes | None) -> None:
    with pytest.raises(InvalidRequest):
        deadletters.decode(schemas.Reader(), 0, 0, value)


def test_a_result_record_on_the_dead_letter_topic_is_not_a_dead_letter() -> None:
    result = schemas.SingleObjectCodec(schemas.load("job_result")).encode(
        {
            "request_id": "r-1",
            "action_id": "action_a",
            "job_id": "job_1",
            "job_status": "QUEUED",
            "http_status": 202,
            "attempts": 1,
            "latency_ms": 1.0,
            "source_topic": "requests",
            "source_partition": 0,
            "source_offset": 0,
            "completed_at": NOON,
            "job_created_at": None,
            "instance_id": None,
        }
    )

    with pytest.raises(InvalidRequest):
        deadletters.decode(schemas.Reader(), 0, 0, result)


def test_tallies_add_up_by_reason() -> None:
    batch = Tally()
    batch.count(Verdict.SEND, "UNKNOWN_ACTION")
    batch.count(Verdict.SEND, "UNKNOWN_ACTION")
    batch.count(Verdict.SKIP, "REJECTED")
    batch.undecodable = 1
    committed = Tally()
    committed.count(Verdict.FILTER, "REJECTED")

    committed.add(batch)

    assert committed.handled() == 5
    assert committed.as_dict() == {
        "sent": 2,
        "skipped": 1,
        "filtered": 1,
        "undecodable": 1,
        "by_reason": {
            "REJECTED": {"sent": 0, "skipped": 1, "filtered": 1},
            "UNKNOWN_ACTION": {"sent": 2, "skipped": 0, "filtered": 0},
        },
    }


def test_the_summary_says_would_send_on_a_dry_run() -> None:
    tally = Tally()
    tally.count(Verdict.SEND, "UNKNOWN_ACTION")

    real = deadletters.summary(tally, dry_run=False)
    dry = deadletters.summary(tally, dry_run=True)

    assert real[0] == "sent 1, skipped 0 (loop guard), filtered out 0, undecodable 0"
    assert dry[0].startswith("would send 1,")
    assert dry[1] == "  UNKNOWN_ACTION  would send 1, skipped 0, filtered out 0"


def test_every_reason_of_the_schema_can_be_chosen() -> None:
    enum = next(
        field["type"]
        for field in schemas.load("dead_letter").parsed["fields"]
        if field["name"] == "reason"
    )

    assert set(deadletters.REASONS) == set(enum["symbols"])
