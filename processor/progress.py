"""Progress on stderr for a command that works through a file.

On a terminal it is a live bar (rich), with the command's notes printed above
it; anywhere else the notes are plain lines and there is no bar, so a log or a
pipe gets nothing but the notes.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, TextColumn, TimeElapsedColumn
from rich.progress import Progress as Bar


class Progress:
    """Bytes read so far, and how many records were sent and skipped."""

    def __init__(self, total_bytes: int | None, enabled: bool) -> None:
        self._bar: Bar | None = None
        if enabled:
            self._bar = Bar(
                TextColumn("producing"),
                BarColumn(),
                TextColumn("{task.fields[sent]} sent, {task.fields[skipped]} skipped"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self._task = self._bar.add_task(
                "producing", total=total_bytes, sent=0, skipped=0
            )

    def __enter__(self) -> Progress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, read_bytes: int, sent: int, skipped: int) -> None:
        if self._bar is not None:
            self._bar.update(self._task, advance=read_bytes, sent=sent, skipped=skipped)

    def report(self, text: str) -> None:
        """A line for the person watching, above the bar when there is one."""
        if self._bar is None:
            print(text, file=sys.stderr)
        else:
            self._bar.console.print(text, markup=False, highlight=False)
