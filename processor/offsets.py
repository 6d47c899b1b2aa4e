"""Which offsets may be committed, when jobs finish out of order.

Per partition, offsets are tracked in the order they were consumed and marked
done when their output is acknowledged by the broker. The commit position is
the lowest offset not yet done (or one past the last, when all are), so a
commit never passes a record whose output could still be lost.
"""

from __future__ import annotations

from collections import deque

TopicPartition = tuple[str, int]


class PartitionOffsets:
    """Offsets of one partition between consumption and acknowledgement."""

    __slots__ = ("_done", "_next", "_order")

    def __init__(self) -> None:
        self._order: deque[int] = deque()
        self._done: set[int] = set()
        self._next: int | None = None

    def track(self, offset: int) -> None:
        """A record at ``offset`` was consumed (offsets arrive in order)."""
        self._order.append(offset)
        self._next = offset + 1

    def done(self, offset: int) -> None:
        """The output of the record at ``offset`` is acknowledged."""
        self._done.add(offset)

    @property
    def pending(self) -> int:
        """Records consumed whose output is not acknowledged yet."""
        return len(self._order) - len(self._done)

    def committable(self) -> int | None:
        """The offset to commit: everything below it is done."""
        order, done = self._order, self._done
        while order and order[0] in done:
            done.discard(order.popleft())
        return order[0] if order else self._next


class OffsetTracker:
    """``PartitionOffsets`` for every assigned partition, and what changed."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, PartitionOffsets] = {}
        self._committed: dict[TopicPartition, int] = {}

    def assign(self, partition: TopicPartition) -> None:
        self._partitions[partition] = PartitionOffsets()
        self._committed.pop(partition, None)

    def forget(self, partition: TopicPartition) -> None:
        self._partitions.pop(partition, None)
        self._committed.pop(partition, None)

    def track(self, partition: TopicPartition, offset: int) -> None:
        offsets = self._partitions.get(partition)
        if offsets is None:
            offsets = self._partitions[partition] = PartitionOffsets()
        offsets.track(offset)

    def done(self, partition: TopicPartition, offset: int) -> None:
        offsets = self._partitions.get(partition)
        if offsets is not None:
            offsets.done(offset)

    def pending(self, partitions: list[TopicPartition] | None = None) -> int:
        chosen = self._partitions if partitions is None else partitions
        return sum(self._partitions[p].pending for p in chosen if p in self._partitions)

    def to_commit(
        self, partitions: list[TopicPartition] | None = None
    ) -> dict[TopicPartition, int]:
        """Positions that moved since they were last handed out to commit."""
        chosen = list(self._partitions) if partitions is None else partitions
        moved: dict[TopicPartition, int] = {}
        for partition in chosen:
            offsets = self._partitions.get(partition)
            position = offsets.committable() if offsets is not None else None
            if position is not None and self._committed.get(partition) != position:
                moved[partition] = position
        return moved

    def committed(self, positions: dict[TopicPartition, int]) -> None:
        """The broker accepted a commit of ``positions``."""
        self._committed.update(positions)

    def uncommitted(self, positions: dict[TopicPartition, int]) -> None:
        """A commit of ``positions`` failed: hand them out again next time."""
        for partition, position in positions.items():
            if self._committed.get(partition) == position:
                del self._committed[partition]
