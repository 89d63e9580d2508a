"""Property tests for every parser that takes outside input: whatever the bytes, a parser
returns a valid result or raises the project's error with a short message; never another
exception, never a hang (Hypothesis deadlines), never a result larger than its input.

Inputs start from valid examples (the shipped config, recipe and language model, WAV files of
every supported format) and are mutated: bytes flipped, inserted, deleted, truncated, header
fields set to edge values. Examples per test stay in the low hundreds to keep the suite fast;
`benchmarks/fuzz_cli.py` runs the real CLI on many more.
"""

from __future__ import annotations

import json
import math
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from support import REPO

from edgevoice.audio import WavReader
from edgevoice.commands import MAX_HOTWORDS, NAMES, Listen, Reload, SetHotwords, parse_command
from edgevoice.config import load_settings, read_yaml
from edgevoice.errors import EdgevoiceError
from edgevoice.lm import read_arpa
from edgevoice.training.recipe import load_recipe

MAX_MESSAGE = 400  # characters of one problem, beside the file's own path
EXAMPLES = settings(max_examples=150, deadline=2000, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

EDGE_INTS = [0, 1, 2, 3, 8, 16, 24, 0xFF, 0xFFFE, 0xFFFF, 8000, 0x7FFFFFFF, 0xFFFFFFFF]


@st.composite
def mutated(draw: st.DrawFn, base: bytes, edge_offsets: tuple[int, ...] = ()) -> bytes:
    """`base` with a few random edits: byte flips, insertions, deletions, truncation, and
    32-bit edge values written at `edge_offsets` (header fields)."""
    data = bytearray(base)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "insert", "delete", "truncate", "edge"]))
        pos = draw(st.integers(0, max(len(data) - 1, 0)))
        if kind == "flip" and data:
            data[pos] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=16)
                                 | st.sampled_from([b"\n", b":", b"- ", b"[", b"{", b"\\", b"&a",
                                                    b"*a", b"\x00", b"\xff", b"'", b"!!"]))
        elif kind == "delete":
            del data[pos:pos + draw(st.integers(1, 16))]
        elif kind == "truncate":
            del data[pos:]
        elif kind == "edge" and edge_offsets:
            at = draw(st.sampled_from(edge_offsets))
            size = 2 if at in (20, 22, 32, 34) else 4
            value = draw(st.sampled_from(EDGE_INTS)) & (0xFFFF if size == 2 else 0xFFFFFFFF)
            data[at:at + size] = value.to_bytes(size, "little")
    return bytes(data)


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:  # module-wide: Hypothesis reruns the function
        yield Path(d)


def assert_clean(exc: EdgevoiceError, path: Path | None = None) -> None:
    """One of ours, saying what went wrong in a bounded message."""
    assert isinstance(exc, EdgevoiceError)
    text = str(exc).replace(str(path), "") if path else str(exc)
    lines = text.splitlines() or [""]
    assert all(len(line) <= MAX_MESSAGE for line in lines), text[:2000]
    assert text.strip()


# --- WAV ---------------------------------------------------------------------------------

def wav_bytes(fmt: int, bits: int, channels: int, rate: int, frames: int,
              extensible: bool = False, extra_chunk: bool = False) -> bytes:
    width = bits // 8
    rng = np.random.default_rng(frames)
    raw = rng.integers(0, 256, frames * width * channels, dtype=np.uint8).tobytes()
    if fmt == 3:
        dtype = "<f4" if bits == 32 else "<f8"
        raw = rng.uniform(-1, 1, frames * channels).astype(dtype).tobytes()
    body = struct.pack("<HHIIHH", 0xFFFE if extensible else fmt, channels, rate,
                       rate * width * channels, width * channels, bits)
    if extensible:
        body += struct.pack("<HHI", 22, bits, 0) + struct.pack("<H", fmt) + bytes(14)
    chunks = b"fmt " + struct.pack("<I", len(body)) + body
    if extra_chunk:
        chunks += b"LIST" + struct.pack("<I", 5) + b"INFOx\x00"
    chunks += b"data" + struct.pack("<I", len(raw)) + raw
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks


WAV_FORMATS = [(1, 8), (1, 16), (1, 24), (1, 32), (3, 32), (3, 64)]
WAV_FIELDS = (4, 16, 20, 22, 24, 28, 32, 34, 40)  # RIFF size, fmt size and fields, data size


@st.composite
def wavs(draw: st.DrawFn) -> bytes:
    fmt, bits = draw(st.sampled_from(WAV_FORMATS))
    base = wav_bytes(fmt, bits, draw(st.integers(1, 3)), draw(st.sampled_from([8000, 16000,
                                                                              44100])),
                     draw(st.integers(1, 64)), extensible=draw(st.booleans()))
    return draw(mutated(base, WAV_FIELDS))


@EXAMPLES
@given(data=wavs())
def test_wav_reader_returns_bounded_audio_or_an_audio_error(scratch: Path, data: bytes) -> None:
    path = scratch / "in.wav"
    path.write_bytes(data)
    try:
        with WavReader(path) as reader:
            samples = reader.read(reader.info.frames + 10)
            rest = reader.read(10)
    except EdgevoiceError as exc:
        assert_clean(exc, path)
        return
    assert samples.dtype == np.float32 and len(rest) == 0
    assert 0 < len(samples) <= len(data) and np.all(np.abs(samples) <= 1.0)
    assert reader.info.sample_rate >= 8000 and reader.info.channels >= 1


@settings(max_examples=30, deadline=2000)
@given(fmt_bits=st.sampled_from(WAV_FORMATS), channels=st.integers(1, 3),
       extensible=st.booleans(), extra=st.booleans())
def test_valid_wavs_of_every_format_are_read_whole(scratch: Path, fmt_bits: tuple[int, int],
                                                   channels: int, extensible: bool,
                                                   extra: bool) -> None:
    path = scratch / "ok.wav"
    path.write_bytes(wav_bytes(*fmt_bits, channels, 16000, 50, extensible, extra))
    with WavReader(path) as reader:
        assert len(reader.read(1000)) == 50 == reader.info.frames


# --- config ------------------------------------------------------------------------------

CONFIGS = [REPO / "config" / "edgevoice.yaml", *sorted((REPO / "config" / "examples").glob("*"))]
KEYS = ["site_id", "bundle", "log_level", "audio", "source", "vad", "decoder", "sinks", "name",
        "frame_ms", "broker", "commands", "hotwords", "path", "qos", "boost", "phrase"]

scalars = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.integers(-10**30, 10**30) | st.text(max_size=12)
           | st.sampled_from(["mqtt", "beam", "wav", "stdout", "mqtt://h:1", "1e999", "~",
                              "{site_id}", "-.inf", ".nan", "0x1F", "2001-01-01"]))
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=8) | st.integers(), inner,
                      max_size=4),
    max_leaves=20)


def check_config(path: Path) -> None:
    try:
        raw = read_yaml(path)
        raw.pop("plugin_dirs", None)  # it names code to import, not data to parse
        load_settings(raw, str(path))
    except EdgevoiceError as exc:
        assert_clean(exc, path)


@EXAMPLES
@given(data=st.sampled_from(CONFIGS).flatmap(lambda p: mutated(p.read_bytes())))
def test_a_mutated_config_file_loads_or_is_a_config_error(scratch: Path, data: bytes) -> None:
    path = scratch / "edgevoice.yaml"
    path.write_bytes(data)
    check_config(path)


@EXAMPLES
@given(doc=st.dictionaries(st.sampled_from(KEYS), documents, max_size=6),
       odd=st.sampled_from(["", "x: 2001-13-01\n", "x: !!int abc\n", "x: !!float x\n",
                            "x: !!timestamp y\n", f"x: {'9' * 5000}\n", "x: !!binary '@'\n",
                            "? [a]\n: b\n", "x: &a [*a]\n", "x: !!python/name:os.system\n"]))
def test_any_yaml_document_is_settings_or_a_config_error(scratch: Path, doc: dict[str, Any],
                                                        odd: str) -> None:
    path = scratch / "doc.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True) + odd, encoding="utf-8")
    check_config(path)


# --- MQTT commands ----------------------------------------------------------------------

payloads = (
    st.sampled_from([b"on", b"off", b"ON ", b"", b"[]", b'["tobias"]', b"null", b"{}",
                     b'[{"phrase": "call mum", "boost": 3}]', b'[{"boost": 1e999}]',
                     b"[" * 20000, b"[" * 16000, b"[" * 8000 + b"]" * 8000, b"9" * 5000,
                     json.dumps(["x"] * (MAX_HOTWORDS + 1)).encode()])
    .flatmap(lambda base: st.just(base) | mutated(base))
    | st.binary(max_size=64)
    | st.builds(lambda d: json.dumps(d).encode(), documents))


@settings(max_examples=300, deadline=2000, derandomize=True)
@given(name=st.sampled_from(NAMES) | st.text(max_size=80), payload=payloads)
@example(name="hotwords", payload=b"[" * 16000)  # JSON nested deeper than Python recurses
def test_a_command_payload_is_a_command_or_a_command_error(name: str, payload: bytes) -> None:
    try:
        command = parse_command(name, payload)
    except EdgevoiceError as exc:
        assert_clean(exc)
        return
    assert isinstance(command, Reload | Listen | SetHotwords)
    if isinstance(command, SetHotwords):
        assert len(command.hotwords) <= MAX_HOTWORDS
        assert all(isinstance(p, str) and math.isfinite(b) and -20 <= b <= 20
                   for p, b in command.hotwords)


# --- ARPA language models ---------------------------------------------------------------

ARPA = (REPO / "edgevoice" / "models" / "digits" / "lm.arpa").read_bytes()
SMALL_ARPA = (b"\\data\\\nngram 1=3\nngram 2=1\n\n\\1-grams:\n-1.0 <s> -0.5\n-0.5 one -0.3\n"
              b"-0.7 </s>\n\n\\2-grams:\n-0.2 <s> one\n\n\\end\\\n")


@EXAMPLES
@given(data=st.sampled_from([ARPA, SMALL_ARPA]).flatmap(mutated),
       keep=st.booleans(), gz=st.booleans())
@example(data=SMALL_ARPA.replace(b"=3", b"=" + b"9" * 5000), keep=True, gz=False)
@example(data=SMALL_ARPA.replace(b"-0.7 </s>", b"-0.7 </s>" + b" x" * 50000), keep=True,
         gz=False)
@example(data=SMALL_ARPA.replace(b"-0.5 one", b"-0.5 " + b"x" * 100000), keep=False, gz=False)
@example(data=SMALL_ARPA.replace(b"\\end\\", b"y" * 100000), keep=True, gz=False)
@example(data=SMALL_ARPA.replace(b"one -0.3", b"one nan"), keep=True, gz=False)
def test_an_arpa_file_parses_or_is_an_lm_error(scratch: Path, data: bytes, keep: bool,
                                               gz: bool) -> None:
    path = scratch / ("lm.arpa.gz" if gz else "lm.arpa")
    if gz:
        import gzip

        data = gzip.compress(data)[: len(data) + 30]  # may cut the gzip stream too
    path.write_bytes(data)
    try:
        arpa = read_arpa(path, ngrams=keep)
    except EdgevoiceError as exc:
        assert_clean(exc, path)
        return
    assert arpa.order == len(arpa.counts) >= 1
    assert all(p <= 0 and not math.isnan(b) for p, b in arpa.ngrams.values())


# --- recipes ----------------------------------------------------------------------------

RECIPE = REPO / "edgevoice" / "training" / "recipes" / "digits.yaml"


@EXAMPLES
@given(data=mutated(RECIPE.read_bytes()))
def test_a_mutated_recipe_loads_or_is_a_build_error(scratch: Path, data: bytes) -> None:
    path = scratch / "recipe.yaml"
    path.write_bytes(data)
    try:
        load_recipe(path)
    except EdgevoiceError as exc:
        assert_clean(exc, path)
