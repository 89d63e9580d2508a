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


SPEECH_COMMANDS = Path(os.environ.get("EDGEVOICE_SPEECH_COMMANDS",
                                      REPO.parent / "shared" / "data" / "speech-commands"))


@pytest.fixture(scope="session")
def speech_commands_dir() -> Path:
    if not (SPEECH_COMMANDS / "words" / "zero").is_dir():
        pytest.skip(f"Speech Commands sample not found at {SPEECH_COMMANDS} (set "
                    "EDGEVOICE_SPEECH_COMMANDS to the folder)")
    return SPEECH_COMMANDS


@pytest.fixture(scope="session")
def small_speech_commands(speech_commands_dir: Path,
                          tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Links to the first 6 clips of each of a few words, and the background noise folder."""
    out = tmp_path_factory.mktemp("speech-commands")
    for word in ("zero", "one", "two", "nine", "bed", "cat", "yes"):
        (out / "words" / word).mkdir(parents=True)
        for path in sorted((speech_commands_dir / "words" / word).glob("*.wav"))[:6]:
            (out / "words" / word / path.name).symlink_to(path)
    (out / "background_noise").symlink_to(speech_commands_dir / "background_noise")
    return out
