"""The guest's serial console: kept in a log file, a tail, and live streams.

Everything here is bounded, whatever the guest prints: a line longer than
:data:`MAX_LINE` bytes is cut into pieces of at most that size (counted in
``split_lines``), the log file keeps the first ``log_limit`` bytes and then
says how much it dropped (``dropped_bytes``), and the tail quoted in error
messages keeps :data:`TAIL_LINES` lines of at most :data:`TAIL_LINE_CHARS`
characters, with control characters escaped.  A subscriber that falls more
than :data:`SUBSCRIBER_LINES` lines behind loses the newer ones (counted in
``dropped_lines``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .._text import printable

log = logging.getLogger("syscalls.machine")

PANIC = re.compile(rb"Kernel panic - not syncing")
TAIL_LINES = 60
#: longest line handed to subscribers; longer ones arrive in pieces
MAX_LINE = 64 * 1024
#: longest line kept in the tail (error messages), in characters
TAIL_LINE_CHARS = 500
#: default cap of the console log file
LOG_LIMIT = 64 * 1024 * 1024
#: lines a subscriber may have unread before newer ones are dropped for it
SUBSCRIBER_LINES = 10_000
_READ_SIZE = 64 * 1024


class Console:
    """Reads console bytes, writes them to ``log_path`` and fans lines out.

    ``on_panic`` is called once with the panic line when the kernel panics.
    """

    def __init__(
        self, log_path: Path, on_panic: Callable[[str], None], *, log_limit: int = LOG_LIMIT
    ) -> None:
        self.log_path = log_path
        self.log_limit = log_limit
        #: lines longer than MAX_LINE, each cut into pieces
        self.split_lines = 0
        #: console bytes not written to the log file (over ``log_limit``)
        self.dropped_bytes = 0
        #: lines not handed to a subscriber that was SUBSCRIBER_LINES behind
        self.dropped_lines = 0
        self._logged = 0
        self._log: BinaryIO = open(log_path, "wb")  # noqa: SIM115 - closed in close()
        self._tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self._subscribers: set[asyncio.Queue[str | None]] = set()
        self._on_panic = on_panic
        self._panicked = False
        self._partial = bytearray()
        self._splitting = False

    async def pump(self, reader: asyncio.StreamReader) -> None:
        """Read until EOF; run as a background task."""
        while data := await reader.read(_READ_SIZE):
            self._write_log(data)
            self._feed(data)
        if self._partial:
            self._flush_line()
        self._end()

    def _feed(self, data: bytes) -> None:
        start = 0
        while start < len(data):
            end = data.find(b"\n", start)
            stop = len(data) if end < 0 else end + 1
            room = MAX_LINE - len(self._partial)
            if stop - start > room:
                # the line grows past MAX_LINE: pass on what fits as one piece
                self._partial += data[start : start + room]
                start += room
                if not self._splitting:
                    self._splitting = True
                    self.split_lines += 1
                    if self.split_lines == 1:
                        log.warning(
                            "guest console line over %d bytes: passed on in pieces", MAX_LINE
                        )
                self._flush_line()
                continue
            self._partial += data[start:stop]
            start = stop
            if end >= 0:
                self._flush_line()
                self._splitting = False

    def _flush_line(self) -> None:
        self._line(bytes(self._partial))
        self._partial.clear()

    def _line(self, line: bytes) -> None:
        text = line.decode(errors="replace").rstrip("\r\n")
        shown = printable(text[:TAIL_LINE_CHARS])
        if len(text) > TAIL_LINE_CHARS:
            shown += f"... ({len(text) - TAIL_LINE_CHARS} more characters)"
        self._tail.append(shown)
        for q in self._subscribers:
            if q.qsize() >= SUBSCRIBER_LINES:
                if not self.dropped_lines:
                    log.warning("a console subscriber fell %d lines behind", SUBSCRIBER_LINES)
                self.dropped_lines += 1
            else:
                q.put_nowait(text)
        if not self._panicked and PANIC.search(line):
            self._panicked = True
            self._on_panic(shown)

    def _write_log(self, data: bytes) -> None:
        room = self.log_limit - self._logged
        if room > 0:
            self._log.write(data[:room])
            self._log.flush()
            self._logged += min(room, len(data))
        if len(data) > room:
            if not self.dropped_bytes:
                log.warning(
                    "console log %s reached its limit of %d bytes; the rest is dropped",
                    self.log_path,
                    self.log_limit,
                )
            self.dropped_bytes += len(data) - max(room, 0)

    def _end(self) -> None:
        for q in self._subscribers:
            q.put_nowait(None)  # there is always room for the end

    def tail(self, lines: int = TAIL_LINES) -> str:
        """The last console lines, control characters escaped, for error messages."""
        return "\n".join(list(self._tail)[-lines:])

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[asyncio.Queue[str | None]]:
        """Receive every console line from now on (raw guest text); ``None`` marks the end.

        At most :data:`SUBSCRIBER_LINES` lines wait unread; newer ones are dropped.

        Example::

            with machine.console.subscribe() as lines:
                while (line := await lines.get()) is not None:
                    print(line)
        """
        q: asyncio.Queue[str | None] = asyncio.Queue(SUBSCRIBER_LINES + 1)
        self._subscribers.add(q)
        try:
            yield q
        finally:
            self._subscribers.discard(q)

    def close(self) -> None:
        self._end()
        if self.dropped_bytes:
            self._log.write(
                f"\n[syscalls-async: log limit of {self.log_limit} bytes reached; "
                f"{self.dropped_bytes} more console bytes were dropped]\n".encode()
            )
        self._log.close()
