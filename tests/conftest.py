"""Shared fixtures: a real Mosquitto broker on a free port, an MQTT recorder, the bundle."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DEFAULT_BUNDLE, Broker, Recorder


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def recorder(broker: Broker) -> Iterator[Recorder]:
    r = Recorder(broker.port)
    yield r
    r.close()


@pytest.fixture
def bundle_dir() -> Path:
    """The shipped bundle, or EDGEVOICE_TEST_BUNDLE to run the suite against another one."""
    if os.environ.get("EDGEVOICE_TEST_BUNDLE"):
        return Path(os.environ["EDGEVOICE_TEST_BUNDLE"])
    if not (DEFAULT_BUNDLE / "bundle.yaml").exists():
        pytest.fail("the shipped default bundle edgevoice/models/digits is missing")
    return DEFAULT_BUNDLE

