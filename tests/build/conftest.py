"""Fixtures for the edgevoice-build tests: a handful of FSDD recordings, never copied into git."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FSDD = Path(os.environ.get("EDGEVOICE_FSDD", REPO.parent / "shared" / "data" / "fsdd"))
SPEAKERS = ("george", "jackson", "lucas")


@pytest.fixture(scope="session")
def fsdd_dir() -> Path:
    if not (FSDD / "0_george_0.wav").exists():
        pytest.skip(f"FSDD recordings not found at {FSDD} (set EDGEVOICE_FSDD to the folder)")
    return FSDD


@pytest.fixture(scope="session")
def small_fsdd(fsdd_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Links to 3 speakers x 10 digits x 2 takes, so stages run in seconds."""
    out = tmp_path_factory.mktemp("fsdd")
    for speaker in SPEAKERS:
        for digit in range(10):
            for take in range(2):
                name = f"{digit}_{speaker}_{take}.wav"
                (out / name).symlink_to(fsdd_dir / name)
    return out
