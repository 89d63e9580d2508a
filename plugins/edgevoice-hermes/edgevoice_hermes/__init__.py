"""edgevoice plugin speaking Hermes, the MQTT protocol of Rhasspy 2.5 and Snips:

- sink `hermes`: the daemon's transcripts and VAD events as Hermes messages (sink.py);
- source `hermes`: a satellite's `audioFrame` stream as the daemon's microphone (source.py);
- `edgevoice-hermes`: a Rhasspy ASR service, startListening/stopListening sessions over
  satellites' audio (service.py, run by cli.py).
"""

from __future__ import annotations

from edgevoice import hookimpl


@hookimpl
def register_sinks(register) -> None:  # type: ignore[no-untyped-def]
    from edgevoice_hermes.sink import HermesSink

    register(HermesSink)


@hookimpl
def register_sources(register) -> None:  # type: ignore[no-untyped-def]
    from edgevoice_hermes.source import HermesSource

    register(HermesSource)
