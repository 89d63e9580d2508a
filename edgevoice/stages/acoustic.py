"""Frontend and acoustic model stages, both configured by the model bundle."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevoice.components import Closeable, StageContext
from edgevoice.errors import PluginError
from edgevoice.features import LogMel
from edgevoice.options import opt
from edgevoice.runtime import AcousticModel


def _bundle(ctx: StageContext, what: str):  # type: ignore[no-untyped-def]
    if ctx.bundle is None:
        raise PluginError(f"{what}: needs a model bundle (set `bundle:` in the config)")
    return ctx.bundle


@dataclass(frozen=True)
class LogMelOptions:
    """Settings come from the bundle, so the model sees what it was trained on."""


class LogMelFrontend(Closeable):
    """Log-mel filterbank (numpy), the same code the build tool trains with."""

    name = "logmel"
    kind = "frontend"
    Options = LogMelOptions

    def __init__(self, options: LogMelOptions, ctx: StageContext) -> None:
        self._mel = LogMel(_bundle(ctx, "frontend logmel").frontend)
        self.n_features = self._mel.n_features

    def process(self, samples: np.ndarray) -> np.ndarray:
        return self._mel.process(samples)

    def reset(self) -> None:
        self._mel.reset()


@dataclass(frozen=True)
class TFLiteOptions:
    threads: int = opt(1, "interpreter threads", min=1, max=16)


class TFLiteModel(Closeable):
    """The bundle's INT8 CTC model, run in chunks while the person is still speaking."""

    name = "tflite"
    kind = "model"
    Options = TFLiteOptions

    def __init__(self, options: TFLiteOptions, ctx: StageContext) -> None:
        bundle = _bundle(ctx, "model tflite")
        self._model = AcousticModel(bundle.model_file, bundle.streaming, bundle.frontend.n_mels,
                                    len(bundle.tokens), options.threads)
        self.frame_seconds = bundle.streaming.stride * bundle.frontend.hop_ms / 1000.0

    def process(self, feats: np.ndarray) -> np.ndarray:
        return self._model.process(feats)

    def flush(self) -> np.ndarray:
        return self._model.flush()

    def reset(self) -> None:
        self._model.reset()
