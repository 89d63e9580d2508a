"""Commands from a broker are parsed like the YAML, bounded, and refused with a reason."""

from __future__ import annotations

import json

import pytest

from edgevoice.beam import DEFAULT_BOOST, BeamOptions, hot_pair
from edgevoice.commands import (
    MAX_HOTWORDS,
    MAX_PAYLOAD,
    CommandError,
    Listen,
    Reload,
    SetHotwords,
    parse_command,
)
from edgevoice.options import validate


def test_hot_words_mean_the_same_over_mqtt_as_in_yaml() -> None:
    items = ["tobias", {"phrase": "call mum", "boost": 3}, {"phrase": "x"}]
    errors: list[str] = []
    yaml_side = validate(BeamOptions, {"hotwords": items}, "decoder", errors)
    assert yaml_side is not None and not errors
    command = parse_command("hotwords", json.dumps(items).encode())
    assert command == SetHotwords(tuple(hot_pair(h) for h in yaml_side.hotwords))
    assert command.hotwords == (("tobias", DEFAULT_BOOST), ("call mum", 3.0), ("x", DEFAULT_BOOST))


@pytest.mark.parametrize("payload, why", [
    (b'"tobias"', "expected a list, got str"),          # not six one-letter hot words
    (b'{"phrase": "x"}', "expected a list, got a mapping"),  # not the hot word "phrase"
    (b"null", "expected a list, got null"),              # not the hot word "None"
    (b"[1e999]", "got float inf"),                        # not the hot word "inf"
    (b'[{"phrase": "x", "boost": 1e300}]', "hotwords[0].boost: 1e+300 is outside"),
    (b'[{"phrase": "x", "boost": NaN}]', "hotwords[0].boost: must be a finite number"),
    (b'[{"phrase": "x", "bost": 3}]', 'did you mean "boost"'),
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not JSON"),
])
def test_bad_hot_words_are_refused_with_the_reason(payload: bytes, why: str) -> None:
    with pytest.raises(CommandError, match=why.replace("[", r"\[").replace("]", r"\]")
                       .replace("+", r"\+")):
        parse_command("hotwords", payload)


def test_sizes_are_bounded() -> None:
    with pytest.raises(CommandError, match="over the"):
        parse_command("hotwords", b"[" + b'"a",' * (MAX_PAYLOAD // 4) + b'"a"]')
    many = json.dumps(["a"] * (MAX_HOTWORDS + 1)).encode()
    assert len(many) < MAX_PAYLOAD
    with pytest.raises(CommandError, match=f"at most {MAX_HOTWORDS}"):
        parse_command("hotwords", many)


def test_listen_and_reload() -> None:
    assert parse_command("listen", b" OFF\n") == Listen(False)
    assert parse_command("listen", b"on") == Listen(True)
    assert parse_command("reload", b"") == Reload()
    with pytest.raises(CommandError, match="neither on nor off"):
        parse_command("listen", b"maybe")
    with pytest.raises(CommandError, match="unknown command 'dance'"):
        parse_command("dance", b"")
