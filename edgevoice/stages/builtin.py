"""The built-in plugin: registers edgevoice's own components through the public hooks."""

from __future__ import annotations

import pluggy

from edgevoice.hookspecs import Register

hookimpl = pluggy.HookimplMarker("edgevoice")


@hookimpl(trylast=True)
def register_sources(register: Register) -> None:
    from edgevoice.stages.sources import MicSource, StdinSource, WavSource

    for cls in (MicSource, WavSource, StdinSource):
        register(cls)


@hookimpl(trylast=True)
def register_stages(register: Register) -> None:
    from edgevoice.stages.acoustic import LogMelFrontend, TFLiteModel
    from edgevoice.stages.denoise import NoDenoise, WebRtcDenoise
    from edgevoice.stages.vad import EnergyVad, WebRtcVad

    for cls in (NoDenoise, WebRtcDenoise, WebRtcVad, EnergyVad, LogMelFrontend, TFLiteModel):
        register(cls)


@hookimpl(trylast=True)
def register_decoders(register: Register) -> None:
    from edgevoice.beam import BeamDecoder
    from edgevoice.decoding import GreedyDecoder

    register(GreedyDecoder)
    register(BeamDecoder)


@hookimpl(trylast=True)
def register_sinks(register: Register) -> None:
    from edgevoice.stages.mqtt import MqttSink
    from edgevoice.stages.sinks import FileSink, StdoutSink

    for cls in (MqttSink, StdoutSink, FileSink):
        register(cls)
