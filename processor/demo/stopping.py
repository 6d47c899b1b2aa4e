"""How the demo stops what it started, however it ends.

Everything started goes on one ``Started`` stack and is stopped in reverse
order: the processor (SIGTERM, so it finishes its jobs), the simulator, the
broker and its data. SIGTERM unwinds through the same path as Ctrl-C, and
the stack is closed with both signals ignored, so a second Ctrl-C cannot
leave half of it running.
"""

from __future__ import annotations

import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from types import FrameType, TracebackType

from processor.errors import ProcessorError

_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stopped(BaseException):
    """SIGTERM arrived: unwind like Ctrl-C, through every clean-up."""


class Started(ExitStack):
    """Everything the demo started; closed in reverse order, deaf to signals."""

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> bool | None:
        if kind is not None and issubclass(kind, KeyboardInterrupt | Stopped):
            print("\nInterrupted: stopping everything the demo started", flush=True)

        previous = {
            signum: signal.signal(signum, signal.SIG_IGN) for signum in _SIGNALS
        }
        try:
            return super().__exit__(kind, error, trace)
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


@contextmanager
def sigterm_stops() -> Iterator[None]:
    """SIGTERM raises ``Stopped`` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``, so both unwind through the same clean-ups."""

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise Stopped

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def work_folder() -> Iterator[Path]:
    """A temporary folder for the processor's log, kept when the run failed."""
    folder = Path(tempfile.mkdtemp(prefix="cxone-demo-"))
    failed = False
    try:
        yield folder
    except ProcessorError:
        failed = True
        raise
    finally:
        # After a failure the error names the log in it, so it stays.
        if not (failed and any(folder.iterdir())):
            shutil.rmtree(folder, ignore_errors=True)
