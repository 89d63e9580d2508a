"""One audio stream of one client, recognised on a worker thread while it arrives.

The event loop hands blocks over through a queue; the worker runs edgevoice's own
`Transcriber.transcribe_blocks` on them (resampling, the faint-noise edges, the recognizer), so
at `audio-stop` only the last step and the decode remain. At most `max_pending` bytes wait in
the queue: beyond that the event loop stops reading this client (TCP pushes back on it) until
the worker catches up, so a client that sends faster than it is heard costs bounded memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
from collections.abc import Iterator
from concurrent.futures import Executor

import numpy as np

from edgevoice.messages import Transcript
from edgevoice.transcribe import Transcriber

MAX_PENDING_BYTES = 1 << 20  # 32 s of 16-bit audio at 16 kHz waiting for the worker


class Cancelled(Exception):
    """The client went away: the worker abandons the stream."""


_END = np.zeros(0, np.int16)  # sentinels: identity matters, not content
_CANCEL = np.zeros(0, np.int16)


class Session:
    """`await feed(samples)` for each chunk, then `await finish()` or `await cancel()`, all
    from the event loop."""

    def __init__(self, transcriber: Transcriber, rate: int, name: str, executor: Executor,
                 max_pending: int = MAX_PENDING_BYTES) -> None:
        self._loop = asyncio.get_running_loop()
        self._queue: queue.SimpleQueue[np.ndarray] = queue.SimpleQueue()
        self._pending = 0  # bytes queued; changed on the event loop only
        self._max_pending = max_pending
        self._room = asyncio.Event()
        self._room.set()
        self.rate = rate
        self.samples = 0  # fed so far, at the client's rate
        self._result = self._loop.run_in_executor(
            executor, transcriber.transcribe_blocks, self._blocks(), rate, name)
        self._result.add_done_callback(lambda _: self._room.set())

    async def feed(self, samples: np.ndarray) -> None:
        while self._pending >= self._max_pending and not self._result.done():
            self._room.clear()
            await self._room.wait()
        if self._result.done():  # the worker failed: its error, now
            await self._result
        self.samples += len(samples)
        self._pending += samples.nbytes
        self._queue.put(samples)

    async def finish(self) -> Transcript:
        self._queue.put(_END)
        return await self._result

    async def cancel(self) -> bool:
        """Abandon the stream; True once the worker has let go of the recognizer cleanly (it
        may be used again), False when it had failed."""
        self._queue.put(_CANCEL)
        try:
            await self._result
        except Cancelled:
            return True
        except Exception:
            return False
        return True

    # -- on the worker thread ----------------------------------------------------------------
    def _blocks(self) -> Iterator[np.ndarray]:
        while True:
            block = self._queue.get()
            if block is _END:
                return
            if block is _CANCEL:
                raise Cancelled
            with contextlib.suppress(RuntimeError):  # the loop has closed: the server is stopping
                self._loop.call_soon_threadsafe(self._taken, block.nbytes)
            yield block

    def _taken(self, nbytes: int) -> None:
        self._pending -= nbytes
        if self._pending < self._max_pending:
            self._room.set()
