"""The cap check the group scenario relies on, on timelines made up here.

A check that could not see an excess would let the group test pass whatever
the processor did; these prove it sees one, and reads the caps right.
"""

from __future__ import annotations

from tests.reliability.support import Lifetimes, check_caps

ACTION_OF = {"a1": "a", "a2": "a", "a3": "a", "b1": "b", "b2": "b"}
CAPS = {"a": 1, "*": 2}


def test_overlap_within_cap_times_live_instances_passes() -> None:
    timeline = [("in", "a1", 1.0), ("in", "a2", 1.1), ("out", "a1", 1.2)]
    timeline += [("out", "a2", 1.3), ("in", "a3", 1.4), ("out", "a3", 1.5)]

    checked = check_caps(timeline, ACTION_OF, CAPS, lambda _: 2)

    assert checked.violations == []
    assert checked.peaks == {"a": 2}


def test_one_over_the_cap_of_the_live_instances_is_a_violation() -> None:
    timeline = [("in", "a1", 1.0), ("in", "a2", 1.1), ("out", "a2", 1.2)]

    checked = check_caps(timeline, ACTION_OF, CAPS, lambda _: 1)

    assert len(checked.violations) == 1
    assert checked.violations[0].startswith("a: 2 in flight")


def test_actions_without_a_cap_of_their_own_take_the_wildcard() -> None:
    timeline = [("in", "b1", 1.0), ("in", "b2", 1.1)]

    assert check_caps(timeline, ACTION_OF, CAPS, lambda _: 1).violations == []
    assert len(check_caps(timeline, ACTION_OF, {"*": 1}, lambda _: 1).violations) == 1


def test_an_instance_counts_as_live_from_its_start_until_it_lingered_out() -> None:
    lifetimes = Lifetimes()
    first = lifetimes.started()
    lifetimes.started()
    lifetimes.ended(first, linger_s=-3600.0)

    assert lifetimes.live_at(float("-inf")) == 0
    assert lifetimes.live_at(float("inf")) == 1
