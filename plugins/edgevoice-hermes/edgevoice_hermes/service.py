"""A Rhasspy 2.5 ASR service: the contract of rhasspy-asr-*-hermes, over edgevoice's chain.

`hermes/asr/startListening` (siteId, sessionId, stopOnSilence, ...) opens a session for that
site; the site's `audioFrame`s (or the session's `audioSessionFrame`s) go to the session's
recognizer, behind the configured VAD when `stopOnSilence`; `stopListening`, or the end of
speech, ends it with `hermes/asr/textCaptured` carrying the same sessionId and siteId.
`toggleOff`/`toggleOn` mute and unmute a site. A bad frame, an unknown session or a failing
stage end that session with `hermes/error/asr` and a log line; other sessions go on.

`HermesAsr` holds no connection: `handle(topic, payload)` returns what to publish, so the
protocol is tested without a broker and the MQTT side (cli.py) stays a thin loop. Not
thread-safe: one thread calls it (cli.py queues messages from paho's thread).
"""

from __future__ import annotations

import json
import logging
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevoice.audio import Framer, StreamResampler, to_int16
from edgevoice.components import SpeechAudio, SpeechEnd, SpeechStart
from edgevoice.contracts import Vad
from edgevoice.decoding import DecodeResult
from edgevoice.errors import EdgevoiceError
from edgevoice.recognizer import Recognizer
from edgevoice_hermes import protocol

log = logging.getLogger("edgevoice.hermes")

Out = tuple[str, dict[str, Any]]  # (topic, JSON payload) to publish
Key = tuple[str, str | None]  # (siteId, sessionId)

MAX_SESSIONS = 16  # sessions nobody stops must not pile up: the oldest is ended
REMEMBERED = 256  # ended sessions whose late stopListening is expected, not an error


@dataclass
class Session:
    """One startListening: its recognizer, and its VAD when it stops on silence."""

    site_id: str
    session_id: str | None
    recognizer: Recognizer
    vad: Vad | None  # stopOnSilence
    wakeword_id: str | None = None
    lang: str | None = None
    in_speech: bool = False
    busy: float = 0.0  # seconds spent recognising: textCaptured's `seconds`
    framer: Framer | None = None
    resampler: StreamResampler | None = None
    rate: int = 0


class HermesAsr:
    """Sessions of Rhasspy's ASR contract; `handle` maps one MQTT message to replies."""

    def __init__(self, open_recognizer: Callable[[], Recognizer], open_vad: Callable[[], Vad],
                 *, sample_rate: int, frame_samples: int, site_ids: tuple[str, ...] = ()
                 ) -> None:
        self.open_recognizer, self.open_vad = open_recognizer, open_vad
        self.sample_rate, self.frame_samples = sample_rate, frame_samples
        self.site_ids = set(site_ids)  # empty: every site
        self.sessions: OrderedDict[Key, Session] = OrderedDict()
        self.ended: deque[Key] = deque(maxlen=REMEMBERED)
        self.muted: dict[str, set[str]] = {}  # siteId -> toggleOff reasons still in force
        self._spare: list[Recognizer] = []  # recognizers of ended sessions, reused

    def warm(self) -> None:
        """Build one recognizer now: a broken model fails at start-up, and the first session
        does not wait for the model to load."""
        self._spare.append(self.open_recognizer())

    def topics(self) -> list[str]:
        """What to subscribe to."""
        sites = sorted(self.site_ids) or ["+"]
        return ([protocol.START_LISTENING, protocol.STOP_LISTENING, protocol.TOGGLE_ON,
                 protocol.TOGGLE_OFF]
                + [protocol.AUDIO_FRAME.format(site_id=s) for s in sites]
                + [protocol.SESSION_FRAME.format(site_id=s, session_id="+") for s in sites])

    def handle(self, topic: str, payload: bytes) -> list[Out]:
        """One message from the broker; the messages to publish in reply."""
        parts = topic.split("/")
        if topic.startswith("hermes/audioServer/"):
            if len(parts) == 4 and parts[3] == "audioFrame":
                return self._frame(parts[2], None, payload)
            if len(parts) == 5 and parts[4] == "audioSessionFrame":
                return self._frame(parts[2], parts[3], payload)
            return []
        try:
            body = json.loads(payload)
            if not isinstance(body, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as exc:
            log.error("hermes: %s: ignored a payload that is not a JSON object (%s)", topic, exc)
            return []
        site = str(body.get("siteId") or "default")
        if self.site_ids and site not in self.site_ids:
            return []
        session_id = body.get("sessionId")
        session_id = None if session_id is None else str(session_id)
        if topic == protocol.START_LISTENING:
            return self._start(site, session_id, body)
        if topic == protocol.STOP_LISTENING:
            return self._stop((site, session_id))
        if topic in (protocol.TOGGLE_ON, protocol.TOGGLE_OFF):
            self._toggle(site, str(body.get("reason") or ""), topic == protocol.TOGGLE_ON)
        return []

    # -- the contract ------------------------------------------------------------------------
    def _start(self, site: str, session_id: str | None, body: dict[str, Any]) -> list[Out]:
        out: list[Out] = []
        key = (site, session_id)
        if key in self.sessions:  # started again: start over, as Rhasspy's services do
            self._release(self.sessions.pop(key))
        while len(self.sessions) >= MAX_SESSIONS:
            old = next(iter(self.sessions))
            log.warning("hermes: more than %d sessions open: ending the oldest, %s at %s, "
                        "which was never stopped", MAX_SESSIONS, old[1], old[0])
            out += self._fail(old, f"ended: more than {MAX_SESSIONS} sessions were open and "
                              "this one was never stopped")
        try:
            recognizer = self._spare.pop() if self._spare else self.open_recognizer()
            vad = self.open_vad() if body.get("stopOnSilence", True) else None
        except EdgevoiceError as exc:
            log.error("hermes: cannot start session %s at %s: %s", session_id, site, exc)
            return out + [(protocol.ASR_ERROR, protocol.asr_error(
                str(exc), site_id=site, session_id=session_id, context="startListening"))]
        recognizer.reset()
        self.sessions[key] = Session(site, session_id, recognizer, vad,
                                     wakeword_id=body.get("wakewordId"), lang=body.get("lang"))
        log.info("hermes: listening at %s (session %s%s)", site, session_id,
                 ", until silence" if vad is not None else "")
        return out

    def _stop(self, key: Key) -> list[Out]:
        session = self.sessions.pop(key, None)
        if session is None:
            if key in self.ended:  # ended on silence: Rhasspy's dialogue manager stops it too
                return []
            site, session_id = key
            log.warning("hermes: stopListening for session %s at %s, which was never started "
                        "(or was started for another site)", session_id, site)
            return [(protocol.ASR_ERROR, protocol.asr_error(
                f"no session {session_id} is listening at site {site}: send "
                "hermes/asr/startListening first", site_id=site, session_id=session_id,
                context="stopListening"))]
        return self._finish(session)

    def _toggle(self, site: str, reason: str, on: bool) -> None:
        reasons = self.muted.setdefault(site, set())
        if on:  # the empty reason ("unknown") overrides every other, as in Rhasspy
            reasons.difference_update({reason} if reason else set(reasons))
        else:
            reasons.add(reason)
        log.info("hermes: asr %s at %s", "off" if reasons else "on", site)

    def _frame(self, site: str, session_id: str | None, payload: bytes) -> list[Out]:
        if self.muted.get(site):
            return []
        if session_id is None:  # the site's stream: every session listening there
            keys = [k for k in self.sessions if k[0] == site]
        elif (site, session_id) in self.sessions:
            keys = [(site, session_id)]
        else:
            if (site, session_id) in self.ended:
                return []
            log.warning("hermes: audio for session %s at %s, which is not listening",
                        session_id, site)
            return [(protocol.ASR_ERROR, protocol.asr_error(
                f"audio for session {session_id}, which is not listening at site {site}",
                site_id=site, session_id=session_id, context="audioSessionFrame"))]
        if not keys:  # satellites stream all the time: no session, no decoding
            return []
        try:
            samples, rate = protocol.decode_wav(payload)
        except EdgevoiceError as exc:
            log.error("hermes: site %s: %s", site, exc)
            out: list[Out] = []
            for key in keys:
                out += self._fail(key, str(exc))
            return out
        out = []
        for key in keys:
            out += self._feed(self.sessions[key], samples, rate)
        return out

    # -- a session's audio -------------------------------------------------------------------
    def _feed(self, s: Session, samples: np.ndarray, rate: int) -> list[Out]:
        t0 = time.perf_counter()
        try:
            result = self._recognise(s, samples, rate)
        except Exception as exc:  # a failing stage ends this session, not the service
            log.exception("hermes: session %s at %s failed", s.session_id, s.site_id)
            return self._fail((s.site_id, s.session_id), f"recognition failed: "
                              f"{type(exc).__name__}: {exc}")
        s.busy += time.perf_counter() - t0
        if result is None:
            return []
        del self.sessions[(s.site_id, s.session_id)]
        return self._captured(s, result)

    def _recognise(self, s: Session, samples: np.ndarray, rate: int) -> DecodeResult | None:
        """Audio in; the result once the VAD has heard the end of speech."""
        if rate != s.rate:  # the first frame, or a satellite that changed its rate
            s.rate, s.resampler = rate, StreamResampler(rate, self.sample_rate)
        assert s.resampler is not None
        x = to_int16(s.resampler.process(samples))
        if s.vad is None:
            s.recognizer.accept(x)
            return None
        s.framer = s.framer or Framer(self.frame_samples)
        for frame in s.framer.push(x):
            for event in s.vad.process(s.recognizer.clean(frame)):
                if isinstance(event, SpeechStart):
                    s.recognizer.start()
                    s.in_speech = True
                elif isinstance(event, SpeechAudio) and s.in_speech:
                    s.recognizer.accept_clean(event.samples)
                elif isinstance(event, SpeechEnd):
                    s.in_speech = False
                    if event.too_short:  # a click or a cough: keep listening
                        s.recognizer.start()
                    else:
                        return s.recognizer.finish()
        return None

    def _finish(self, s: Session) -> list[Out]:
        """stopListening: whatever was heard so far is the result."""
        t0 = time.perf_counter()
        try:
            result = s.recognizer.finish()
        except Exception as exc:
            log.exception("hermes: session %s at %s failed", s.session_id, s.site_id)
            self._end(s)
            return [(protocol.ASR_ERROR, protocol.asr_error(
                f"recognition failed: {type(exc).__name__}: {exc}", site_id=s.site_id,
                session_id=s.session_id, context="stopListening"))]
        s.busy += time.perf_counter() - t0
        return self._captured(s, result)

    def _captured(self, s: Session, result: DecodeResult) -> list[Out]:
        self._end(s)
        log.info("hermes: session %s at %s: %r", s.session_id, s.site_id, result.text)
        return [(protocol.TEXT_CAPTURED, protocol.text_captured(
            result, site_id=s.site_id, session_id=s.session_id, seconds=s.busy,
            wakeword_id=s.wakeword_id, lang=s.lang))]

    def _fail(self, key: Key, error: str) -> list[Out]:
        """End a session with hermes/error/asr."""
        s = self.sessions.pop(key)
        self._end(s)
        return [(protocol.ASR_ERROR, protocol.asr_error(
            error, site_id=s.site_id, session_id=s.session_id, context="audioFrame"))]

    def _end(self, s: Session) -> None:
        self.ended.append((s.site_id, s.session_id))
        self._release(s)

    def _release(self, s: Session) -> None:
        if s.vad is not None:
            s.vad.close()
        self._spare.append(s.recognizer)

    def close(self) -> None:
        for s in self.sessions.values():
            self._release(s)
        self.sessions.clear()
        for recognizer in self._spare:
            recognizer.close()
        self._spare.clear()
