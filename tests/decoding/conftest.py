"""Fixtures for decoder tests."""

from __future__ import annotations

import pytest
from ctc_frames import FRAME_SECONDS, TOKENS

from edgevoice.decoding import DecoderContext


@pytest.fixture
def ctx() -> DecoderContext:
    return DecoderContext.create(TOKENS, 0, FRAME_SECONDS)
