"""The scheduler: in-flight limit, per-action caps and ordering lanes."""

from __future__ import annotations

from processor.scheduler import NO_ACTION, Job, Scheduler
from processor.settings import Ordering

PARTITION = ("requests", 0)


def make(
    ordering: Ordering = "unordered",
    limit: int = 10,
    caps: dict[str, int] | None = None,
) -> Scheduler[str]:
    caps = caps or {}
    return Scheduler(ordering, lambda action: caps.get(action, limit), lambda: limit)


def add(
    s: Scheduler[str], name: str, action: str, key: bytes | None = None
) -> Job[str]:
    job = Job(name, action, s.lane_of(action, key, PARTITION), size=10)
    s.add(job)
    return job


def drain(s: Scheduler[str]) -> list[Job[str]]:
    started = []
    while (job := s.next()) is not None:
        started.append(job)
    return started


def test_the_global_limit_bounds_jobs_in_flight() -> None:
    s = make(limit=3)
    for i in range(5):
        add(s, f"j{i}", "a")

    started = drain(s)
    s.finished(started[0])
    more = drain(s)

    assert [j.payload for j in started] == ["j0", "j1", "j2"]
    assert [j.payload for j in more] == ["j3"]
    assert s.in_flight == 3
    assert (s.buffered, s.buffered_bytes) == (1, 10)


def test_an_action_at_its_cap_does_not_hold_up_other_actions() -> None:
    s = make(limit=10, caps={"slow": 2})
    for i in range(5):
        add(s, f"slow{i}", "slow")
    for i in range(3):
        add(s, f"fast{i}", "fast")

    started = [j.payload for j in drain(s)]

    assert started.count("fast0") + started.count("fast1") + started.count("fast2") == 3
    assert sum(1 for name in started if name.startswith("slow")) == 2
    assert s.in_flight_for("slow") == 2


def test_a_parked_action_starts_again_when_one_of_its_jobs_ends() -> None:
    s = make(limit=10, caps={"a": 1})
    first = add(s, "a0", "a")
    add(s, "a1", "a")

    assert [j.payload for j in drain(s)] == ["a0"]
    s.finished(first)
    assert [j.payload for j in drain(s)] == ["a1"]


def test_unordered_actions_take_turns() -> None:
    s = make(limit=4)
    for i in range(4):
        add(s, f"a{i}", "a")
        add(s, f"b{i}", "b")

    started = [j.payload for j in drain(s)]

    assert sorted(started) == ["a0", "a1", "b0", "b1"]


def test_key_ordering_runs_one_job_per_key_in_order() -> None:
    s = make("key", limit=10)
    jobs = [add(s, f"k1-{i}", "a", b"k1") for i in range(3)]
    add(s, "k2-0", "a", b"k2")

    first = [j.payload for j in drain(s)]
    s.finished(jobs[0])
    second = [j.payload for j in drain(s)]
    s.finished(jobs[1])
    third = [j.payload for j in drain(s)]

    assert sorted(first) == ["k1-0", "k2-0"]
    assert second == ["k1-1"]
    assert third == ["k1-2"]


def test_partition_ordering_runs_one_job_per_partition() -> None:
    s = make("partition", limit=10)
    jobs = [add(s, f"p{i}", "a", f"k{i}".encode()) for i in range(3)]

    assert [j.payload for j in drain(s)] == ["p0"]
    s.finished(jobs[0])
    assert [j.payload for j in drain(s)] == ["p1"]


def test_a_keyed_lane_waits_for_its_action_without_blocking_other_keys() -> None:
    s = make("key", limit=10, caps={"busy": 1})
    busy = add(s, "x-0", "busy", b"x")
    add(s, "y-0", "busy", b"y")
    add(s, "z-0", "free", b"z")

    started = [j.payload for j in drain(s)]
    s.finished(busy)
    later = [j.payload for j in drain(s)]

    assert started == ["x-0", "z-0"]
    assert later == ["y-0"]


def test_invalid_requests_have_no_cap() -> None:
    s = make(limit=10, caps={})
    for i in range(5):
        add(s, f"bad{i}", NO_ACTION)

    assert len(drain(s)) == 5


def test_drop_removes_buffered_jobs_and_keeps_the_rest() -> None:
    s = make(limit=0)
    for name in ("keep", "drop1", "drop2"):
        add(s, name, "a")

    dropped = s.drop(lambda payload: payload == "keep")

    assert sorted(j.payload for j in dropped) == ["drop1", "drop2"]
    assert [j.payload for j in s] == ["keep"]
    assert (s.buffered, s.buffered_bytes) == (1, 10)


def test_a_lower_limit_stops_starts_until_jobs_end() -> None:
    limit = [5]
    s: Scheduler[str] = Scheduler("unordered", lambda action: 100, lambda: limit[0])
    jobs = []
    for i in range(8):
        job = Job(f"j{i}", "a", ("action", "a"))
        s.add(job)
        jobs.append(job)

    started = drain(s)
    limit[0] = 2
    for job in started[:3]:
        s.finished(job)
    assert drain(s) == []
    s.finished(started[3])
    assert [j.payload for j in drain(s)] == ["j5"]
