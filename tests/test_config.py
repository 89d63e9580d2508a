"""Configuration: documented defaults, every error with its YAML path, did-you-mean."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgevoice.config import STAGES, CoreSchema, apply_overrides, load_settings, read_yaml
from edgevoice.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def settings_of(raw: dict):  # type: ignore[no-untyped-def]
    return load_settings(raw, "test.yaml")[0]


def test_shipped_config_documents_exactly_the_defaults() -> None:
    documented = settings_of(read_yaml(REPO / "config" / "edgevoice.yaml"))
    defaults = settings_of({})
    raw_blocks = ("source", "sinks", *STAGES)
    for f in dataclasses.fields(CoreSchema):
        if f.name not in raw_blocks:
            assert getattr(documented.core, f.name) == getattr(defaults.core, f.name), f.name
    assert documented.source == defaults.source
    assert documented.stages == defaults.stages
    assert documented.sinks == defaults.sinks


@pytest.mark.parametrize("example", sorted((REPO / "config" / "examples").glob("*.yaml")))
def test_examples_validate(example: Path) -> None:
    settings_of(read_yaml(example))


def test_all_errors_reported_at_once_with_paths() -> None:
    raw = {
        "bogus": 1,
        "audio": {"frame_ms": 25},
        "vad": {"name": "webrtcvad", "agressiveness": 2},
        "model": {"name": "tflite", "threads": "two"},
        "decoder": {"name": "gredy"},
        "sinks": [{"name": "mqtt", "qos": 5, "brokr": "x"}],
    }
    with pytest.raises(ConfigError) as err:
        settings_of(raw)
    problems = err.value.problems
    text = "\n".join(problems)
    assert len(problems) == 7, text
    assert "bogus: unknown option" in text
    assert "audio.frame_ms: must be one of 10, 20, 30, got 25" in text
    assert 'vad.agressiveness: unknown option (did you mean "aggressiveness"?)' in text
    assert "model.threads: expected int, got str 'two'" in text
    assert "decoder.name: unknown decoder 'gredy' (did you mean \"greedy\"?)" in text
    assert "sinks[0].qos: 5 is outside the allowed range 0..2" in text
    assert 'sinks[0].brokr: unknown option (did you mean "broker"?)' in text
    assert str(err.value).startswith("test.yaml: 7 problems")


def test_unknown_plugin_name_lists_what_exists() -> None:
    # installed plugins add their own sources (edgevoice-hermes: "hermes") to the list
    with pytest.raises(ConfigError, match=r"source.name: unknown source 'microphone'.*"
                                          r"available: (\w+, )*mic, stdin, wav"):
        settings_of({"source": {"name": "microphone"}})


def test_inline_secret_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\].password: unknown option"):
        settings_of({"sinks": [{"name": "mqtt", "password": "hunter2"}]})


def test_bad_broker_url() -> None:
    with pytest.raises(ConfigError, match=r"sinks\[0\]: broker 'localhost:1883' is not"):
        settings_of({"sinks": [{"name": "mqtt", "broker": "localhost:1883"}]})


def test_malformed_yaml_names_line(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("site_id: x\nvad: {name: webrtcvad\n")
    with pytest.raises(ConfigError, match=r"c.yaml: line 3, column 1: invalid YAML"):
        read_yaml(p)


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    p = tmp_path / "c.yaml"
    p.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        read_yaml(p)


def test_overrides_replace_source_and_broker() -> None:
    raw = apply_overrides({"sinks": [{"name": "stdout"}]}, input_wav="x.wav",
                          broker="mqtt://10.0.0.2:1884", site_id="hall", decoder="beam")
    s = settings_of(raw)
    assert s.source.name == "wav" and s.source.options.path == "x.wav"
    assert [c.name for c in s.sinks] == ["stdout", "mqtt"]
    assert s.sinks[1].options.broker == "mqtt://10.0.0.2:1884"
    assert s.site_id == "hall" and s.stages["decoder"].name == "beam"


def test_settings_are_frozen() -> None:
    s = settings_of({})
    with pytest.raises(AttributeError):
        s.core.site_id = "x"  # type: ignore[misc]


def test_a_number_with_an_exponent_and_no_point_is_a_float(tmp_path: Path) -> None:
    """PyYAML (YAML 1.1) reads 1e-10 as a string; YAML 1.2 and every user read a number."""
    from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe

    recipe = load_recipe(DEFAULT_RECIPE, {"frontend.floor": "1e-10"})
    assert recipe.frontend.floor == 1e-10
    from edgevoice.beam import BeamOptions
    from edgevoice.options import validate

    path = tmp_path / "edgevoice.yaml"
    path.write_text("decoder:\n  name: beam\n  reject_threshold: 5E-1\n  beta: -15e-1\n")
    raw = read_yaml(path)["decoder"]
    assert raw["reject_threshold"] == "5E-1"  # what PyYAML hands over
    errors: list[str] = []
    options = validate(BeamOptions, {k: v for k, v in raw.items() if k != "name"}, "decoder",
                       errors)
    assert not errors and options is not None
    assert (options.reject_threshold, options.beta) == (0.5, -1.5)
    settings_of({"decoder": raw})  # the daemon's config takes it as well
    for word in ("1e", "e5", "1e-1x", "ten"):  # not numbers: still named as strings
        with pytest.raises(Exception, match=f"frontend.floor: expected float, got str '{word}'"):
            load_recipe(DEFAULT_RECIPE, {"frontend.floor": word})
