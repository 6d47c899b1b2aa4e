from __future__ import annotations

import math
from email.utils import formatdate

import pytest

from processor.cxone import (
    DEFAULT_RETRY_AFTER_S,
    MAX_RETRY_AFTER_S,
    retry_after_seconds,
)

NOW = 1_700_000_000.0


@pytest.mark.parametrize("value", [None, "", "   "])
def test_no_value_gives_the_default(value: str | None) -> None:
    assert retry_after_seconds(value, now=NOW) == DEFAULT_RETRY_AFTER_S == 1.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("3", 3.0), ("0.5", 0.5), (" 7 ", 7.0), ("0", 0.0), ("-5", 0.0)],
)
def test_a_number_of_seconds(value: str, seconds: float) -> None:
    assert retry_after_seconds(value, now=NOW) == seconds


def test_a_huge_value_is_capped() -> None:
    assert retry_after_seconds("100000", now=NOW) == MAX_RETRY_AFTER_S


def test_an_http_date_counts_from_now() -> None:
    value = formatdate(NOW + 10, usegmt=True)
    assert retry_after_seconds(value, now=NOW) == pytest.approx(10.0, abs=1.0)


def test_an_http_date_in_the_past_means_now() -> None:
    assert retry_after_seconds(formatdate(NOW - 60, usegmt=True), now=NOW) == 0.0


def test_a_far_http_date_is_capped() -> None:
    value = formatdate(NOW + 86_400, usegmt=True)
    assert retry_after_seconds(value, now=NOW) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize("value", ["soon", "3 seconds", "Tue, 99 Foo 2023"])
def test_garbage_gives_the_default(value: str) -> None:
    assert retry_after_seconds(value, now=NOW) == DEFAULT_RETRY_AFTER_S


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "Infinity", "1e400"])
def test_non_finite_numbers_stay_within_bounds(value: str) -> None:
    seconds = retry_after_seconds(value, now=NOW)

    assert math.isfinite(seconds)
    assert 0.0 <= seconds <= MAX_RETRY_AFTER_S
    assert seconds == DEFAULT_RETRY_AFTER_S
