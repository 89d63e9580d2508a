"""What the hermes tests share: Rhasspy's own message classes, and FSDD speech as a satellite
sends it (16 kHz 16-bit mono WAV chunks)."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from edgevoice_hermes.protocol import encode_wav
from support import digit_clip

rhasspyhermes = pytest.importorskip(
    "rhasspyhermes", reason="the Hermes tests parse messages with rhasspy-hermes: "
    "`pip install --no-deps rhasspy-hermes==0.6.2 dataclasses-json` (it pins paho-mqtt 1.5, "
    "edgevoice needs 2: see plugins/edgevoice-hermes/README.md)")

RATE = 16000
CHUNK = 1024  # samples per audioFrame, as Rhasspy's audio recorders send


def speech(names: list[str], gap_s: float = 0.3, tail_s: float = 1.2, lead_s: float = 0.4
           ) -> np.ndarray:
    """FSDD digits with silence around them, int16 at 16 kHz."""
    silence = np.zeros(int(lead_s * RATE), np.float32)
    parts = [silence]
    for name in names:
        parts += [digit_clip(name, RATE), np.zeros(int(gap_s * RATE), np.float32)]
    parts.append(np.zeros(int(tail_s * RATE), np.float32))
    x = np.concatenate(parts)
    return (np.clip(x, -1, 32767 / 32768) * 32768).astype(np.int16)


def frames(samples: np.ndarray) -> list[bytes]:
    """The audio as a stream of audioFrame payloads (each a small WAV file)."""
    return [encode_wav(samples[i:i + CHUNK], RATE) for i in range(0, len(samples), CHUNK)]


def wait_ready(sock: socket.socket) -> None:
    """Block until the process under test tells systemd it is READY (NOTIFY_SOCKET)."""
    while not sock.recv(4096).decode().startswith("READY=1"):
        pass
