"""YAML -> validated, frozen settings. Every problem is reported at once, with its YAML path.

Validation runs in two passes: the core schema first, then each chosen component's own
`Options` (after plugins are loaded). Nothing here opens a device or a network connection.
An empty file means all defaults; config/edgevoice.yaml documents them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from edgevoice.bundle import DEFAULT_BUNDLE
from edgevoice.errors import ConfigError, PluginError
from edgevoice.options import join, load_yaml, opt, validate
from edgevoice.plugins import Registry

STAGES = ("denoise", "vad", "frontend", "model", "decoder")
DEFAULT_SYSTEM_CONFIG = Path("/etc/edgevoice/edgevoice.yaml")


@dataclass(frozen=True)
class Choice:
    """A component chosen by name, with its validated options."""

    kind: str
    name: str
    options: Any
    path: str  # YAML path, for messages


@dataclass(frozen=True)
class AudioSettings:
    frame_ms: Literal[10, 20, 30] = opt(20, "pipeline frame length, ms (what VAD and denoise see)")
    queue_seconds: float = opt(10.0, "audio buffered between capture and processing, s",
                               min=0.1, max=600.0)
    overflow: Literal["drop_oldest", "drop_newest"] = opt(
        "drop_oldest", "what a live source loses when processing falls behind")


@dataclass(frozen=True)
class CaptureSettings:
    """Keep each utterance's audio and transcript as a manifest `edgevoice-build` reads."""

    dir: str = opt("auto", "folder of the WAVs and manifest.jsonl; auto: $STATE_DIRECTORY/"
                   "capture, else ~/.local/state/edgevoice/capture")
    max_utterances: int = opt(1000, "utterances kept; beyond, the oldest are dropped", min=1)
    max_bytes: int = opt(100_000_000, "bytes kept (WAVs and manifest); beyond, the oldest "
                         "are dropped", min=1_000_000)


SITE_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class CoreSchema:
    site_id: str = opt("default", "this device's id: MQTT topics and payloads carry it")
    bundle: str = opt(DEFAULT_BUNDLE, "model bundle: builtin:NAME, a directory, or a NAME in "
                      "models_dir")
    models_dir: str | None = opt(None, "folder of model bundles")
    plugin_dirs: tuple[str, ...] = opt([], "folders of *.py plugin modules to load")
    log_level: Literal["debug", "info", "warning", "error"] = opt("info", "log verbosity")
    partial_interval_ms: int = opt(250, "how often partial results are published, ms; 0: never",
                                   min=0, max=10000)
    delivery_timeout: float = opt(30.0, "s to wait for sinks to deliver at the end of an input",
                                  min=0.0)
    audio: AudioSettings = field(default_factory=AudioSettings)
    capture: CaptureSettings | None = opt(None, "keep what is heard for retraining; null: off")
    source: dict[str, Any] = opt({"name": "mic"}, "audio source")
    denoise: dict[str, Any] = opt({"name": "none"}, "noise suppression")
    vad: dict[str, Any] = opt({"name": "webrtcvad"}, "voice activity detection / segmenter")
    frontend: dict[str, Any] = opt({"name": "logmel"}, "feature frontend")
    model: dict[str, Any] = opt({"name": "tflite"}, "acoustic model runner")
    decoder: dict[str, Any] = opt({"name": "beam"}, "CTC decoder")
    sinks: tuple[dict[str, Any], ...] = opt([{"name": "mqtt"}], "where transcripts go")

    def __post_init__(self) -> None:
        if not SITE_ID.match(self.site_id):
            raise ValueError(f"site_id {self.site_id!r}: use letters, digits, '_', '-' and '.' "
                             "only (it becomes part of MQTT topics)")


@dataclass(frozen=True)
class Settings:
    core: CoreSchema
    source: Choice
    stages: dict[str, Choice]
    sinks: tuple[Choice, ...]
    origin: str  # file the settings came from, or "defaults"

    @property
    def site_id(self) -> str:
        return self.core.site_id


MAX_YAML_BYTES = 1 << 20  # a config is a few KiB; /dev/zero or a log file is not one


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Safe-load a YAML file; errors name the file, line and column. Sizes are bounded before
    anything is built: the file's bytes, the nesting depth and the aliases' expansion."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            raw = f.read(MAX_YAML_BYTES + 1)
        if len(raw) > MAX_YAML_BYTES:
            raise ConfigError([f"larger than {MAX_YAML_BYTES >> 10} KiB: not a config file"],
                              str(p))
        text = raw.decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(["no such file"], str(p)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read: {exc}"], str(p)) from None
    try:
        data, _ = load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError([f"{where}invalid YAML: {exc.problem}"], str(p)) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"invalid YAML: {exc}"], str(p)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"top level must be a mapping, not {type(data).__name__}"], str(p))
    return data


def load_raw(path: str | Path | None) -> tuple[dict[str, Any], str]:
    """The raw mapping from `path`, /etc/edgevoice/edgevoice.yaml, or built-in defaults."""
    if path is not None:
        return read_yaml(path), str(path)
    if DEFAULT_SYSTEM_CONFIG.exists():
        return read_yaml(DEFAULT_SYSTEM_CONFIG), str(DEFAULT_SYSTEM_CONFIG)
    return {}, "defaults"


def parse_core(raw: dict[str, Any], origin: str) -> tuple[CoreSchema, list[str]]:
    """First pass. Returns the core settings, with defaults in place of invalid top-level
    keys, and the problems found, so the second pass can still check the valid blocks."""
    errors: list[str] = []
    core = validate(CoreSchema, raw, "", errors)
    if core is not None:
        return core, errors
    bad = {e.split(":", 1)[0].split(".", 1)[0].split("[", 1)[0] for e in errors}
    core = validate(CoreSchema, {k: v for k, v in raw.items() if k not in bad}, "", [])
    return core or CoreSchema(), errors


def load_settings(raw: dict[str, Any], origin: str) -> tuple[Settings, Registry]:
    """Both passes over a raw mapping; one ConfigError lists every problem found."""
    from edgevoice.plugins import create_registry

    core, errors = parse_core(raw, origin)
    registry = create_registry(core.plugin_dirs)
    try:
        settings = resolve(core, registry, origin)
    except ConfigError as exc:
        errors.extend(exc.problems)
    if errors:
        raise ConfigError(errors, origin)
    return settings, registry


def parse_choice(kind: str, block: Any, path: str, registry: Registry, errors: list[str]
                 ) -> Choice | None:
    """A component chosen by a YAML block (`name:` and its options), or None with the
    problems appended to `errors`."""
    if not isinstance(block, dict) or not isinstance(block.get("name"), str):
        errors.append(f"{path}: needs `name: <{kind} name>`")
        return None
    name = block["name"]
    try:
        cls = registry.get(kind, name, join(path, "name"))
    except PluginError as exc:
        errors.append(str(exc))
        return None
    options = validate(cls.Options, block, path, errors, ignore=("name",))
    return Choice(kind, name, options, path) if options is not None else None


def resolve(core: CoreSchema, registry: Registry, origin: str) -> Settings:
    """Second pass: look up every component and validate its options."""
    errors: list[str] = []
    source = parse_choice("source", core.source, "source", registry, errors)
    stages = {k: parse_choice(k, getattr(core, k), k, registry, errors) for k in STAGES}
    sinks = [parse_choice("sink", b, join("sinks", i), registry, errors)
             for i, b in enumerate(core.sinks)]
    if not core.sinks:
        errors.append("sinks: at least one sink is needed (e.g. `- name: stdout`)")
    if errors:
        raise ConfigError(errors, origin)
    assert source is not None
    return Settings(core, source, {k: v for k, v in stages.items() if v is not None},
                    tuple(s for s in sinks if s is not None), origin)


def apply_overrides(raw: dict[str, Any], *, input_wav: str | None = None,
                    realtime: bool = False, broker: str | None = None,
                    site_id: str | None = None, decoder: str | None = None,
                    bundle: str | None = None) -> dict[str, Any]:
    """Command-line flags on top of the YAML (the file itself is never modified)."""
    raw = dict(raw)
    if input_wav is not None:
        raw["source"] = {"name": "wav", "path": input_wav, "realtime": realtime,
                         "tail_silence_ms": 1000}
    if site_id is not None:
        raw["site_id"] = site_id
    if bundle is not None:
        raw["bundle"] = bundle
    if decoder is not None:
        block = raw.get("decoder")
        same = isinstance(block, dict) and block.get("name") == decoder
        raw["decoder"] = dict(block) if same else {"name": decoder}  # type: ignore[arg-type]
    if broker is not None:
        sinks = [dict(s) for s in raw.get("sinks") or [{"name": "mqtt"}] if isinstance(s, dict)]
        mqtt = [s for s in sinks if s.get("name") == "mqtt"]
        for s in mqtt:
            s["broker"] = broker
        if not mqtt:
            sinks.append({"name": "mqtt", "broker": broker})
        raw["sinks"] = sinks
    return raw

