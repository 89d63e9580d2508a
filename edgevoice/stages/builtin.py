"""The built-in plugin: registers edgevoice's own components through the public hooks.

The typed tuples let mypy check each built-in against its kind's protocol.
"""

from __future__ import annotations

from edgevoice import hookimpl
from edgevoice.contracts import Decoder, Denoiser, Frontend, Model, Sink, Source, Vad
from edgevoice.hookspecs import Register


@hookimpl(trylast=True)
def register_sources(register: Register) -> None:
    from edgevoice.stages.sources import MicSource, StdinSource, WavSource

    sources: tuple[type[Source], ...] = (MicSource, WavSource, StdinSource)
    for cls in sources:
        register(cls)


@hookimpl(trylast=True)
def register_stages(register: Register) -> None:
    from edgevoice.stages.acoustic import LogMelFrontend, TFLiteModel
    from edgevoice.stages.denoise import NoDenoise, WebRtcDenoise
    from edgevoice.stages.vad import EnergyVad, WebRtcVad

    denoisers: tuple[type[Denoiser], ...] = (NoDenoise, WebRtcDenoise)
    vads: tuple[type[Vad], ...] = (WebRtcVad, EnergyVad)
    frontends: tuple[type[Frontend], ...] = (LogMelFrontend,)
    models: tuple[type[Model], ...] = (TFLiteModel,)
    for cls in denoisers + vads + frontends + models:
        register(cls)


@hookimpl(trylast=True)
def register_decoders(register: Register) -> None:
    from edgevoice.beam import BeamDecoder
    from edgevoice.decoding import GreedyDecoder

    decoders: tuple[type[Decoder], ...] = (GreedyDecoder, BeamDecoder)
    for cls in decoders:
        register(cls)


@hookimpl(trylast=True)
def register_sinks(register: Register) -> None:
    from edgevoice.stages.metrics import PrometheusSink
    from edgevoice.stages.mqtt import MqttSink
    from edgevoice.stages.sinks import FileSink, StdoutSink

    sinks: tuple[type[Sink], ...] = (MqttSink, StdoutSink, FileSink, PrometheusSink)
    for cls in sinks:
        register(cls)
