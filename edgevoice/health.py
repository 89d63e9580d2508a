"""The daemon's health: what it has published, and the periodic `Stats` message.

`Tally` sits among the pipeline's sinks and counts the transcripts the users receive; it
outlives reloads, as the daemon's totals must. `StatsClock` runs on the processing thread: its
real-time factor is that thread's CPU time over the audio it processed, so waiting for audio
(or for a muted microphone) costs nothing and no frame is timed.
"""

from __future__ import annotations

import time

from edgevoice.messages import Message, ModelInfo, Stats, Transcript


class Tally:
    """Counts transcripts, rejected ones apart; handed messages like a sink."""

    name = "stats"

    def __init__(self) -> None:
        self.utterances = 0
        self.rejected = 0

    def publish(self, message: Message) -> None:
        if isinstance(message, Transcript):
            self.utterances += 1
            self.rejected += message.rejected


class StatsClock:
    """Makes a `Stats` every `interval` s (monotonic clock) from what the daemon counts."""

    def __init__(self, site_id: str, interval: float, sample_rate: int, now: float) -> None:
        self.site_id, self.interval, self.sample_rate = site_id, interval, sample_rate
        self.started = self._last = now
        self._cpu = time.thread_time()
        self.samples = 0  # processed since the last Stats, at `sample_rate`

    def due(self, now: float) -> bool:
        return now - self._last >= self.interval

    def stats(self, now: float, *, tally: Tally, queued_samples: int, dropped_samples: int,
              listening: bool, model: ModelInfo) -> Stats:
        """The Stats of the interval ending `now`; the next interval starts."""
        cpu = time.thread_time()
        audio = self.samples / self.sample_rate
        stats = Stats(self.site_id, now - self._last, audio,
                      (cpu - self._cpu) / audio if audio else None,
                      queued_samples / self.sample_rate, dropped_samples / self.sample_rate,
                      tally.utterances, tally.rejected, listening, now - self.started, model,
                      time.time())
        self._last, self._cpu, self.samples = now, cpu, 0
        return stats
