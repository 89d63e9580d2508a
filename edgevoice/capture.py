"""Learn from use: each utterance's audio and transcript, kept as a manifest `edgevoice-build`
reads as it is.

The pipeline hands over every transcript with the audio the recognizer heard (pre-roll and
hang-over included, after the denoiser). A writer thread saves it as a 16-bit mono WAV at the
model's rate and appends a line to `manifest.jsonl`: `audio` (relative to the manifest),
`text`, `speaker` (the site id), `confidence`, `rejected`, `time`, `utterance_id`, `model`.
The folder is bounded by count and bytes: the oldest utterances go first, WAV and line
together, the manifest rewritten atomically. What people said is in these files, so they are
private (`edgevoice.private`). The processing thread only queues: a slow or failing disk costs
captured utterances (counted, logged at most once a minute), never a transcript.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevoice.audio import wav_bytes
from edgevoice.config import CaptureSettings
from edgevoice.errors import ConfigError
from edgevoice.messages import Transcript
from edgevoice.private import (
    UnsafePathError,
    private_dir,
    read_private,
    state_dir,
    write_private,
)

log = logging.getLogger("edgevoice.capture")

MANIFEST = "manifest.jsonl"
QUEUE_UTTERANCES = 16  # waiting for the disk; beyond, new utterances are not kept
LOG_EVERY = 60.0  # s between log lines about utterances not kept
WAV_NAME = re.compile(r"^\d{8}-\d{6}-[0-9a-f]{8}\.wav$")  # local time and utterance id


def capture_dir(setting: str) -> Path:
    """The folder `capture.dir` names; "auto" is `capture` in the daemon's state folder."""
    return state_dir() / "capture" if setting == "auto" else Path(setting).expanduser()


@dataclass(frozen=True)
class Heard:
    audio: np.ndarray  # int16 at the model's rate
    transcript: Transcript


class Capture:
    """Keeps utterances in one folder, within its bounds. `add` is for the processing thread
    (it never blocks); the disk is written on a thread of its own, started at the first."""

    def __init__(self, settings: CaptureSettings, sample_rate: int, origin: str = "config"
                 ) -> None:
        self.dir = capture_dir(settings.dir)
        self.manifest = self.dir / MANIFEST
        self.max_utterances = settings.max_utterances
        self.max_bytes = settings.max_bytes
        self.sample_rate = sample_rate
        self.lost = 0  # utterances not kept: the queue was full, or the disk failed
        self._last_log = -LOG_EVERY
        self._lost_lock = threading.Lock()
        self._queue: queue.Queue[Heard | None] = queue.Queue(QUEUE_UTTERANCES)
        self._thread: threading.Thread | None = None
        self._check(origin)

    def _check(self, origin: str) -> None:
        """A folder that cannot be used is a mistake to report at start, not at the first
        utterance; nothing is created yet (`edgevoice check-config` runs this too)."""
        d = self.dir
        while not d.exists() and not d.is_symlink() and d != d.parent:
            d = d.parent
        try:
            if d == self.dir:
                private_dir(d, create=False, setting="capture.dir")
            usable = d.is_dir() and os.access(d, os.W_OK | os.X_OK)
        except UnsafePathError as exc:
            raise ConfigError([f"capture.dir: {exc}"], origin) from None
        if not usable:
            raise ConfigError([f"capture.dir: {self.dir} cannot be written by this user "
                               f"({d} is not a writable folder); point capture.dir at a "
                               "folder it may write"], origin)

    # -- the processing thread -----------------------------------------------------------------
    def add(self, audio: np.ndarray, transcript: Transcript) -> None:
        """Queue one utterance for the disk; never waits, never raises."""
        try:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="capture", daemon=True)
                self._thread.start()
            self._queue.put_nowait(Heard(audio, transcript))
        except queue.Full:
            self._lose("the disk is not keeping up")
        except Exception as exc:  # no thread to be had: the transcript is out already
            self._thread = None
            self._lose(f"{type(exc).__name__}: {exc}")

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (for at most `timeout` s), then stop the writer."""
        if self._thread is None:
            return
        try:
            self._queue.put(None, timeout=timeout)
        except queue.Full:  # the disk is stuck: what is queued is lost with the process
            pass
        self._thread.join(timeout)
        self._thread = None

    def _lose(self, why: str) -> None:
        with self._lost_lock:
            self.lost += 1
            if time.monotonic() - self._last_log < LOG_EVERY:
                return
            self._last_log = time.monotonic()
        log.error("capture: an utterance was not kept in %s: %s (%d not kept so far)",
                  self.dir, why, self.lost)

    # -- the writer thread ---------------------------------------------------------------------
    def _run(self) -> None:
        while (item := self._queue.get()) is not None:
            try:
                self.write(item.audio, item.transcript)
            except Exception as exc:  # a full disk, a folder removed: this utterance only
                self._lose(f"{type(exc).__name__}: {exc}")

    def write(self, audio: np.ndarray, transcript: Transcript) -> None:
        """Save one utterance, then drop the oldest beyond the bounds."""
        private_dir(self.dir, create=True, setting="capture.dir")
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(transcript.time))
        name = f"{stamp}-{transcript.utterance_id[:8]}.wav"
        line = {"audio": name, "text": transcript.text, "speaker": transcript.site_id,
                "confidence": round(transcript.confidence, 4), "rejected": transcript.rejected,
                "time": round(transcript.time, 3), "utterance_id": transcript.utterance_id,
                "model": transcript.model.to_payload()}
        with self._locked():
            write_private(self.dir / name, wav_bytes(audio, self.sample_rate), new=True)
            write_private(self.manifest, json.dumps(line, ensure_ascii=False).encode() + b"\n",
                          append=True)
            self._bound()

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One writer at a time: a reload starts the new pipeline's capture before the old
        one has written its last utterance, and two daemons may share a folder."""
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # and with it the lock

    def _bound(self) -> None:
        """Drop the oldest lines (and their WAVs) beyond the bounds, and any WAV of ours that
        no line names (its line was deleted by hand, or a write failed half-way)."""
        lines = [x for x in read_private(self.manifest).split(b"\n") if x.strip()]
        wavs = {e.name: e.stat(follow_symlinks=False).st_size for e in os.scandir(self.dir)
                if WAV_NAME.match(e.name) and e.is_file(follow_symlinks=False)}
        names = [_audio_of(x) for x in lines]
        sizes = [wavs.get(n, 0) + len(x) + 1 for n, x in zip(names, lines, strict=True)]
        total, drop = sum(sizes), 0
        while drop < len(lines) and (len(lines) - drop > self.max_utterances
                                     or total > self.max_bytes):
            total -= sizes[drop]
            drop += 1
        if drop:
            tmp = self.manifest.with_name(MANIFEST + ".tmp")
            write_private(tmp, b"".join(x + b"\n" for x in lines[drop:]))
            os.replace(tmp, self.manifest)
        keep = set(names[drop:])
        for name in wavs.keys() - keep:
            (self.dir / name).unlink(missing_ok=True)


def _audio_of(line: bytes) -> str:
    """The `audio` a manifest line names, or "" (a line damaged by hand still counts)."""
    try:
        row = json.loads(line)
    except ValueError:
        return ""
    audio = row.get("audio") if isinstance(row, dict) else None
    return audio if isinstance(audio, str) else ""
