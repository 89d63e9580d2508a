"""A VAD plugin written the documented way: a Segmenter subclass with only `is_speech`."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import REPO, compose, edgevoice, need_fsdd

from edgevoice.components import SpeechAudio, SpeechEnd, SpeechStart, StageContext
from edgevoice.config import load_settings
from edgevoice.errors import ConfigError, PluginError
from edgevoice.plugins import create_registry

RATE, FRAME = 16000, 320


def readme_vad() -> str:
    """The README's VAD example itself, so what it shows is what is tested."""
    blocks = re.findall(r"```python\n(.*?)```", (REPO / "README.md").read_text(), re.S)
    (example,) = [b for b in blocks if "class PeakVad" in b]
    return example


def write_plugin(folder: Path, text: str | None = None) -> Path:
    folder.mkdir(exist_ok=True)
    (folder / "peak.py").write_text(readme_vad() if text is None else text)
    return folder


def test_segmenter_subclass_segments_through_the_registry(tmp_path: Path) -> None:
    plugins = write_plugin(tmp_path / "p")
    settings, registry = load_settings(
        {"plugin_dirs": [str(plugins)], "vad": {"name": "peak", "level": 1000,
                                                "hangover_ms": 200, "preroll_ms": 100},
         "sinks": [{"name": "stdout"}]}, "t.yaml")
    choice = settings.stages["vad"]
    assert (choice.options.level, choice.options.hangover_ms) == (1000, 200)
    cls = registry.get("vad", "peak", "vad.name")
    vad = cls(choice.options, StageContext("t", RATE, FRAME))
    # 1 s quiet, 0.6 s loud, 1 s quiet: one utterance to the last loud frame, ended by 200 ms
    # of silence; its audio starts 100 ms of pre-roll before the 2 x 60 ms trigger window that
    # ends with the third loud frame (1.06 s - 0.12 s - 0.1 s)
    rng = np.random.default_rng(0)
    x = np.concatenate([np.full(RATE, 10), rng.integers(-8000, 8000, int(0.6 * RATE)),
                        np.full(RATE, 10)]).astype(np.int16)
    events = [e for i in range(0, len(x), FRAME) for e in vad.process(x[i : i + FRAME])]
    events += vad.flush()
    marks = [e for e in events if not isinstance(e, SpeechAudio)]
    assert marks == [SpeechStart(0.84), SpeechEnd(1.6, "silence")]
    audio = sum(len(e.samples) for e in events if isinstance(e, SpeechAudio))
    assert audio == round((1.6 + 0.2 - 0.84) * RATE)  # pre-roll, speech and hang-over


def test_segmenter_subclass_runs_in_the_daemon(tmp_path: Path, bundle_dir: Path) -> None:
    need_fsdd()
    wav = compose(tmp_path / "a.wav", ["3_george_1", "5_jackson_2"])
    plugins = write_plugin(tmp_path / "p")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "bundle": str(bundle_dir), "plugin_dirs": [str(plugins)], "vad": {"name": "peak"},
        "sinks": [{"name": "stdout", "topics": ["vad", "transcript"]}]}))
    out = edgevoice("run", "--config", str(cfg), "--input", str(wav))
    assert out.returncode == 0, out.stderr
    messages = [json.loads(line) for line in out.stdout.splitlines()]
    assert [m.get("event", "transcript") for m in messages] == \
        ["start", "stop", "transcript", "start", "stop", "transcript"]


def test_segmenter_without_is_speech_is_refused_at_start_up(tmp_path: Path) -> None:
    example = readme_vad()
    body = example.split("    def is_speech")[0] + example.split("> self.options.level\n")[1]
    assert "is_speech" not in body
    write_plugin(tmp_path, body)
    with pytest.raises(PluginError, match=r"^plugin .*peak.py: vad 'peak' \(PeakVad\) leaves "
                                          r"is_speech\(\) abstract: implement it$"):
        create_registry((tmp_path,), entry_points=False)


def test_segmenter_options_must_extend_segmenter_options(tmp_path: Path) -> None:
    example = readme_vad()
    wrong = example.replace("class PeakOptions(SegmenterOptions)", "class PeakOptions")
    assert wrong != example
    write_plugin(tmp_path, wrong)
    with pytest.raises(ConfigError, match=r"unknown vad 'peak'.*plugins that failed to load: "
                                          r".*peak.py \(import failed: TypeError: PeakVad.Options "
                                          r"must subclass edgevoice.SegmenterOptions"):
        load_settings({"plugin_dirs": [str(tmp_path)], "vad": {"name": "peak"},
                       "sinks": [{"name": "stdout"}]}, "t.yaml")
