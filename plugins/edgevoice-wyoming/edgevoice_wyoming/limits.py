"""What one client may cost the server (no heavy imports: the CLI shows these as defaults)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_seconds: float = 60.0  # audio in one stream; a voice command is a few seconds
    max_clients: int = 8  # connections served at once (each may hold a worker thread)
    idle_seconds: float = 15.0  # silence from a client in the middle of a stream
