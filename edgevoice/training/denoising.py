"""The daemon's denoiser in the build: a model meant to run behind a denoiser is trained and
evaluated on audio that went through that same denoiser, built from the same plugin registry
and options, frame by frame as the pipeline runs it (train/serve parity)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from edgevoice.errors import BuildError, EdgevoiceError

FRAME_MS = 20  # the daemon's default pipeline frame (core audio.frame_ms)
LEAD_MS = 1000  # room noise the denoiser hears before each clip, as it would in the daemon
Denoise = Callable[[np.ndarray], np.ndarray]


def make_denoiser(spec: dict[str, Any], sample_rate: int, where: str = "augment.denoise"
                  ) -> Denoise | None:
    """float32 samples -> float32 samples through the denoise component `spec` names (as the
    daemon's YAML `denoise:` block), each call a fresh stream; None for `none`."""
    from edgevoice.components import StageContext, build
    from edgevoice.config import parse_choice
    from edgevoice.plugins import create_registry

    if not spec or spec.get("name", "none") == "none":
        return None
    errors: list[str] = []
    registry = create_registry()
    choice = parse_choice("denoise", dict(spec), where, registry, errors)
    if choice is None or errors:
        raise BuildError("recipe " + "; ".join(errors))
    frame = sample_rate * FRAME_MS // 1000
    try:
        stage = build(choice, registry, StageContext("build", sample_rate, frame))
    except EdgevoiceError as exc:
        raise BuildError(f"recipe {exc}") from None

    lead_frames = LEAD_MS // FRAME_MS

    def run(x: np.ndarray) -> np.ndarray:
        # In the daemon the denoiser has heard the room before anyone speaks: a fresh stream
        # first hears the start of the clip (its leading room noise), repeated, then the clip.
        stage.reset()
        pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)
        head = pcm[: min(len(pcm), frame * 10)]
        if len(head):
            lead = np.resize(head, lead_frames * frame)
            for k in range(0, len(lead), frame):
                stage.process(lead[k : k + frame])
        n = -(-len(pcm) // frame) * frame
        pcm = np.concatenate((pcm, np.zeros(n - len(pcm), np.int16)))
        out = np.concatenate([stage.process(pcm[k : k + frame]) for k in range(0, n, frame)])
        return (out[: len(x)].astype(np.float32) / 32768.0).astype(np.float32)

    return run
