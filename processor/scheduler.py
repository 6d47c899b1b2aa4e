"""Which buffered job starts next: the in-flight limit, the cap matrix, ordering.

Jobs wait in lanes. In ``unordered`` mode a lane is an action, and its jobs
run side by side up to the action's cap. In ``key`` and ``partition`` mode a
lane is a record key or a partition, and it runs one job at a time in offset
order. Either way a lane whose next job's action is at its cap waits on that
action alone, so other actions' jobs keep going.

Lanes that may start are kept in a round-robin queue; a lane blocked by its
action's cap is parked until a job of that action ends. Picking the next job
therefore costs the same however large the buffer is.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from processor.settings import Ordering

T = TypeVar("T")

# Jobs whose action is unknown (invalid requests) have no cap to respect.
NO_ACTION = ""


@dataclass(eq=False)
class Job(Generic[T]):
    """A buffered job: its payload, the action it needs and its ordering lane."""

    payload: T
    action: str
    lane: Hashable
    size: int = 0


@dataclass
class Scheduler(Generic[T]):
    """Picks startable jobs; call ``finished`` for every job it hands out."""

    ordering: Ordering
    cap_for: Callable[[str], int]
    limit: Callable[[], int]
    in_flight: int = 0
    buffered: int = 0
    buffered_bytes: int = 0
    _lanes: dict[Hashable, deque[Job[T]]] = field(default_factory=dict)
    _ready: deque[Hashable] = field(default_factory=deque)
    _queued: set[Hashable] = field(default_factory=set)
    _busy: set[Hashable] = field(default_factory=set)
    _parked: dict[str, set[Hashable]] = field(default_factory=dict)
    _by_action: Counter[str] = field(default_factory=Counter)

    @property
    def ordered(self) -> bool:
        return self.ordering != "unordered"

    def lane_of(
        self, action: str, key: bytes | None, partition: tuple[str, int]
    ) -> Hashable:
        """The lane a job belongs to under this ordering."""
        if self.ordering == "key":
            # Keyless records have no order to keep but their partition's.
            return (
                ("key", partition[0], key)
                if key is not None
                else ("partition", partition)
            )
        if self.ordering == "partition":
            return ("partition", partition)
        return ("action", action)

    def add(self, job: Job[T]) -> None:
        lane = self._lanes.get(job.lane)
        if lane is None:
            lane = self._lanes[job.lane] = deque()
        lane.append(job)
        self.buffered += 1
        self.buffered_bytes += job.size
        self._make_ready(job.lane)

    def next(self) -> Job[T] | None:
        """The next job to start, or ``None`` when nothing may start now."""
        while self._ready and self.in_flight < self.limit():
            lane_id = self._ready.popleft()
            self._queued.discard(lane_id)
            lane = self._lanes.get(lane_id)
            if not lane or lane_id in self._busy:
                continue

            job = lane[0]
            if job.action != NO_ACTION and self._by_action[job.action] >= self.cap_for(
                job.action
            ):
                self._parked.setdefault(job.action, set()).add(lane_id)
                continue

            self._take(lane_id, lane)
            return job
        return None

    def finished(self, job: Job[T]) -> None:
        """A job handed out by ``next`` has ended."""
        self.in_flight -= 1
        if job.action != NO_ACTION:
            self._by_action[job.action] -= 1
            for lane_id in self._parked.pop(job.action, ()):
                self._make_ready(lane_id)
        if self.ordered:
            self._busy.discard(job.lane)
            self._make_ready(job.lane)

    def drop(self, keep: Callable[[T], bool]) -> list[Job[T]]:
        """Remove buffered jobs whose payload ``keep`` refuses; return them."""
        dropped: list[Job[T]] = []
        for lane_id, lane in list(self._lanes.items()):
            kept = deque(job for job in lane if keep(job.payload))
            dropped.extend(job for job in lane if not keep(job.payload))
            if kept:
                self._lanes[lane_id] = kept
            else:
                del self._lanes[lane_id]
        self.buffered -= len(dropped)
        self.buffered_bytes -= sum(job.size for job in dropped)
        return dropped

    def in_flight_for(self, action: str) -> int:
        return self._by_action[action]

    def __iter__(self) -> Iterator[Job[T]]:
        for lane in self._lanes.values():
            yield from lane

    def _take(self, lane_id: Hashable, lane: deque[Job[T]]) -> None:
        job = lane.popleft()
        if not lane:
            del self._lanes[lane_id]
        self.buffered -= 1
        self.buffered_bytes -= job.size
        self.in_flight += 1
        if job.action != NO_ACTION:
            self._by_action[job.action] += 1

        if self.ordered:
            self._busy.add(lane_id)
        elif lane:
            # Unordered lanes run side by side: back of the queue, round robin.
            self._make_ready(lane_id)

    def _make_ready(self, lane_id: Hashable) -> None:
        if lane_id in self._queued or lane_id not in self._lanes:
            return
        if self.ordered and lane_id in self._busy:
            return
        self._ready.append(lane_id)
        self._queued.add(lane_id)
