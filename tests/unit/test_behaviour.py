from __future__ import annotations

import random
import statistics

import pytest

from processor.simulator.behaviour import Behaviour, BehaviourError, Latency, Window


def test_outage_windows_parse_and_cover_their_span() -> None:
    window = Window.parse("30:10")

    assert window == Window(30.0, 10.0)
    assert not window.covers(29.9)
    assert window.covers(30.0)
    assert window.covers(39.9)
    assert not window.covers(40.0)


@pytest.mark.parametrize("text", ["30", "a:b", "-1:5", "3:0", ""])
def test_malformed_outage_windows_are_refused(text: str) -> None:
    with pytest.raises(BehaviourError, match="START:DURATION"):
        Window.parse(text)


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"error_rate": 1.5}, "error_rate"),
        ({"rate_limit_per_s": 0}, "rate_limit_per_s"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"token_lifetime_s": 0}, "token_lifetime_s"),
        ({"actions": {"../x": "PUBLISHED"}}, "action id"),
        ({"actions": {"a": "LIVE"}}, "action status"),
        ({"no_such_setting": 1}, "no_such_setting"),
    ],
)
def test_invalid_changes_name_the_setting(
    changes: dict[str, object], named: str
) -> None:
    with pytest.raises(BehaviourError, match=named):
        Behaviour().changed(changes)


def test_changes_accept_plain_json_values() -> None:
    changed = Behaviour().changed(
        {
            "latency": {"mean_ms": 50, "jitter_ms": 5, "distribution": "uniform"},
            "outages": ["10:5", {"start_s": 30, "duration_s": 2}],
            "rate_limit_per_s": 100,
        }
    )

    assert changed.latency == Latency(50, 5, "uniform")
    assert changed.outages == (Window(10, 5), Window(30, 2))
    assert changed.burst == 10


def test_describe_hides_the_client_secret() -> None:
    described = Behaviour(client_secret="s3cr3t-value").describe()

    assert "s3cr3t-value" not in repr(described)
    assert described["client_secret"] == "***"


@pytest.mark.parametrize(
    ("latency", "low", "high"),
    [
        (Latency(50, 10, "uniform"), 40, 60),
        (Latency(50, 0, "constant"), 50, 50),
        (Latency(50, 10, "normal"), 0, 120),
        (Latency(50, 0, "exponential"), 0, 2000),
    ],
)
def test_latency_draws_have_the_configured_mean_and_spread(
    latency: Latency, low: float, high: float
) -> None:
    rng = random.Random(7)
    draws = [latency.sample_s(rng) * 1000 for _ in range(5000)]

    assert min(draws) >= low
    assert max(draws) <= high
    assert statistics.mean(draws) == pytest.approx(50, rel=0.05)
    if latency.distribution != "constant":
        assert statistics.pstdev(draws) > 1


def test_no_latency_means_no_wait() -> None:
    assert Latency().sample_s(random.Random(1)) == 0.0
