"""The guest's serial console: kept in a log file, a tail, and live streams."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

PANIC = re.compile(rb"Kernel panic - not syncing")
TAIL_LINES = 60


class Console:
    """Reads console bytes, writes them to ``log_path`` and fans lines out.

    ``on_panic`` is called once with the panic line when the kernel panics.
    """

    def __init__(self, log_path: Path, on_panic: Callable[[str], None]) -> None:
        self.log_path = log_path
        self._log: BinaryIO = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self._on_panic = on_panic
        self._panicked = False

    async def pump(self, reader: asyncio.StreamReader) -> None:
        """Read until EOF; run as a background task."""
        while line := await reader.readline():
            self._log.write(line)
            self._log.flush()
            text = line.decode(errors="replace").rstrip("\r\n")
            self._tail.append(text)
            for q in self._subscribers:
                q.put_nowait(text)
            if not self._panicked and PANIC.search(line):
                self._panicked = True
                self._on_panic(text)
        self._end()

    def _end(self) -> None:
        for q in self._subscribers:
            q.put_nowait(None)

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last console lines, for error messages."""
        return "\n".join(list(self._tail)[-lines:])

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[str | None]]:
        """Receive every console line from now on; ``None`` marks the end.

        Example::

            with machine.console.subscribe() as lines:
                while (line := await lines.get()) is not None:
                    print(line)
        """
        q: asyncio.Queue[str | None] = asyncio.Queue()
        self._subscribers.add(q)
        try:
            yield q
        finally:
            self._subscribers.discard(q)

    def close(self) -> None:
        self._end()
        self._log.close()
