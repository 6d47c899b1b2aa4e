from __future__ import annotations

from processor.offsets import OffsetTracker, PartitionOffsets

P0 = ("requests", 0)
P1 = ("requests", 1)


def tracked(*offsets: int) -> PartitionOffsets:
    partition = PartitionOffsets()
    for offset in offsets:
        partition.track(offset)
    return partition


def test_nothing_is_committable_before_anything_is_tracked() -> None:
    assert PartitionOffsets().committable() is None


def test_the_position_stays_at_the_first_unfinished_offset() -> None:
    partition = tracked(10, 11, 12, 13)

    assert partition.committable() == 10
    partition.done(12)
    partition.done(11)
    assert partition.committable() == 10
    partition.done(10)
    assert partition.committable() == 13


def test_out_of_order_completion_never_passes_an_unfinished_offset() -> None:
    offsets = list(range(100, 120))
    partition = tracked(*offsets)
    finished: set[int] = set()

    for offset in [*offsets[1::2], *offsets[0::2]]:  # odd ones first
        partition.done(offset)
        finished.add(offset)
        position = partition.committable()
        assert position is not None
        assert all(o in finished for o in offsets if o < position)
        assert position == min(set(offsets) - finished, default=120)


def test_all_done_commits_one_past_the_last() -> None:
    partition = tracked(5, 6, 9)  # gaps, as after compaction
    for offset in (9, 5, 6):
        partition.done(offset)

    assert partition.committable() == 10
    assert partition.pending == 0


def test_pending_counts_unacknowledged_records() -> None:
    partition = tracked(0, 1, 2)
    partition.done(1)

    assert partition.pending == 2
    partition.done(0)
    assert partition.committable() == 2
    assert partition.pending == 1


def test_to_commit_returns_only_positions_that_moved() -> None:
    tracker = OffsetTracker()
    tracker.assign(P0)
    tracker.assign(P1)
    for offset in (0, 1):
        tracker.track(P0, offset)
        tracker.track(P1, offset)

    assert tracker.to_commit() == {P0: 0, P1: 0}
    tracker.committed({P0: 0, P1: 0})
    assert tracker.to_commit() == {}

    tracker.done(P0, 0)
    assert tracker.to_commit() == {P0: 1}
    tracker.committed({P0: 1})
    assert tracker.to_commit() == {}
    assert tracker.to_commit([P1]) == {}


def test_a_failed_commit_is_handed_out_again() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.done(P0, 0)
    positions = tracker.to_commit()
    tracker.committed(positions)

    tracker.uncommitted(positions)

    assert tracker.to_commit() == {P0: 1}


def test_an_outdated_failure_does_not_undo_a_newer_commit() -> None:
    tracker = OffsetTracker()
    for offset in (0, 1):
        tracker.track(P0, offset)
    tracker.done(P0, 0)
    tracker.committed({P0: 1})
    tracker.done(P0, 1)
    tracker.committed({P0: 2})

    tracker.uncommitted({P0: 1})

    assert tracker.to_commit() == {}


def test_forget_drops_a_partition() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.track(P1, 0)

    tracker.forget(P0)

    assert tracker.to_commit() == {P1: 0}
    assert tracker.pending() == 1
    tracker.done(P0, 0)  # a late acknowledgement of a revoked partition
    assert tracker.to_commit([P0]) == {}


def test_done_on_an_unknown_partition_is_ignored() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)

    tracker.done(P1, 0)

    assert tracker.pending() == 1
    assert tracker.to_commit() == {P0: 0}


def test_pending_counts_across_chosen_partitions() -> None:
    tracker = OffsetTracker()
    for offset in range(3):
        tracker.track(P0, offset)
    tracker.track(P1, 0)
    tracker.done(P0, 2)

    assert tracker.pending() == 3
    assert tracker.pending([P0]) == 2
    assert tracker.pending([P1, ("other", 0)]) == 1


def test_reassigning_starts_the_partition_afresh() -> None:
    tracker = OffsetTracker()
    tracker.track(P0, 0)
    tracker.committed({P0: 0})

    tracker.assign(P0)

    assert tracker.pending() == 0
    assert tracker.to_commit() == {}
    tracker.track(P0, 0)
    assert tracker.to_commit() == {P0: 0}
