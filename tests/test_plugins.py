"""The plugin system: built-ins through the public hooks, plugin dirs, failures, duplicates."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import edgevoice

from edgevoice import hookspecs
from edgevoice.config import load_settings
from edgevoice.errors import ConfigError, PluginError
from edgevoice.plugins import KINDS, create_registry

REPO = Path(__file__).resolve().parents[1]

PLUGIN = '''
from dataclasses import dataclass
from edgevoice import hookimpl

@dataclass(frozen=True)
class Opts:
    prefix: str = ">"

class Shout:
    """Prints transcripts in capitals."""
    name = "shout"
    kind = "sink"
    Options = Opts
    def __init__(self, options, ctx):
        self.options = options
    def open(self): pass
    def publish(self, message):
        if message.topic == "transcript":
            print(self.options.prefix, message.text.upper(), flush=True)
    def flush(self, timeout): return 0
    def close(self): pass

@hookimpl
def register_sinks(register):
    register(Shout)

SEEN = []

@hookimpl
def on_transcript(transcript):
    SEEN.append(transcript.text)
'''


def test_builtins_cover_every_kind_through_the_hooks() -> None:
    registry = create_registry(entry_points=False)
    for kind in KINDS:
        assert registry.components[kind], f"no built-in {kind}"
        assert {c.provider for c in registry.components[kind].values()} == {"edgevoice"}
    assert set(registry.components["decoder"]) >= {"greedy", "beam"}


def test_every_hookspec_is_documented_and_tested() -> None:
    here = Path(__file__).parent
    tests = "\n".join(p.read_text() for p in here.rglob("test_*.py"))
    for name, fn in inspect.getmembers(hookspecs, inspect.isfunction):
        if not hasattr(fn, "edgevoice_spec"):
            continue
        assert (fn.__doc__ or "").strip(), f"hook {name} has no docstring"
        assert name in tests, f"hook {name} is not exercised by any test"


def test_plugin_dir_component_is_usable(tmp_path: Path) -> None:
    (tmp_path / "shout.py").write_text(PLUGIN)
    settings, registry = load_settings(
        {"plugin_dirs": [str(tmp_path)], "sinks": [{"name": "shout", "prefix": "!"}]}, "t")
    assert settings.sinks[0].name == "shout"
    assert settings.sinks[0].options.prefix == "!"
    assert registry.components["sink"]["shout"].provider == str(tmp_path / "shout.py")


def test_plugin_options_are_validated(tmp_path: Path) -> None:
    (tmp_path / "shout.py").write_text(PLUGIN)
    with pytest.raises(ConfigError, match=r'sinks\[0\].prefx: unknown option \(did you mean '
                                          r'"prefix"\?\)'):
        load_settings({"plugin_dirs": [str(tmp_path)],
                       "sinks": [{"name": "shout", "prefx": "!"}]}, "t")


def test_broken_plugin_is_reported_but_not_fatal(tmp_path: Path) -> None:
    (tmp_path / "broken.py").write_text("import no_such_module_anywhere\n")
    settings, registry = load_settings({"plugin_dirs": [str(tmp_path)],
                                        "sinks": [{"name": "stdout"}]}, "t")
    assert "No module named 'no_such_module_anywhere'" in registry.failures[
        str(tmp_path / "broken.py")]
    # ...but using a component that is missing names the broken plugin in the error
    with pytest.raises(ConfigError, match=r"unknown sink 'broken'.*plugins that failed to load:"
                                          r".*broken.py"):
        load_settings({"plugin_dirs": [str(tmp_path)], "sinks": [{"name": "broken"}]}, "t")


def test_duplicate_component_names_both_providers(tmp_path: Path) -> None:
    (tmp_path / "dup.py").write_text(PLUGIN.replace('name = "shout"', 'name = "stdout"'))
    with pytest.raises(PluginError, match=r"sink 'stdout' is provided twice: by edgevoice .* "
                                          r"and by .*dup.py"):
        create_registry((tmp_path,), entry_points=False)


def test_plugins_command_lists_providers_and_failures(tmp_path: Path) -> None:
    (tmp_path / "shout.py").write_text(PLUGIN)
    (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"plugin_dirs: [{tmp_path}]\n")
    out = edgevoice("plugins", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    assert "sink      shout" in out.stdout and str(tmp_path / "shout.py") in out.stdout
    assert "decoder   greedy       edgevoice" in out.stdout
    assert "FAILED" in out.stdout and "RuntimeError: boom" in out.stdout


def test_invalid_component_class_is_refused(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(PLUGIN.replace('kind = "sink"', 'kind = "sinkk"'))
    with pytest.raises(PluginError, match=r"Shout.kind is 'sinkk', expected one of"):
        create_registry((tmp_path,), entry_points=False)


def test_component_missing_a_method_of_its_kind_is_refused_at_start_up(tmp_path: Path) -> None:
    """Without `flush` the daemon would start and fail only at shutdown, losing messages."""
    (tmp_path / "noflush.py").write_text(PLUGIN.replace("    def flush(self, timeout): return 0\n",
                                                        "    flush = None\n"))
    with pytest.raises(PluginError) as err:
        create_registry((tmp_path,), entry_points=False)
    assert str(err.value) == (
        f"plugin {tmp_path / 'noflush.py'}: sink 'shout' (Shout) lacks flush(), which every sink "
        "needs (see edgevoice.contracts.Sink)")
    (tmp_path / "noflush.py").write_text(PLUGIN.replace("    def open(self): pass\n", "")
                                         .replace("    def close(self): pass\n", ""))
    with pytest.raises(PluginError, match=r"\(Shout\) lacks open\(\), close\(\), which"):
        create_registry((tmp_path,), entry_points=False)


def test_options_must_be_a_dataclass(tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text(PLUGIN.replace("@dataclass(frozen=True)\nclass Opts",
                                                    "class Opts"))
    with pytest.raises(PluginError, match=r"Shout has no `Options` dataclass"):
        create_registry((tmp_path,), entry_points=False)


def test_hookimpl_is_exported_without_importing_the_engine() -> None:
    code = ("import sys; from edgevoice import hookimpl; import pluggy; "
            "assert isinstance(hookimpl, pluggy.HookimplMarker); "
            "print(sorted(m for m in ('numpy', 'yaml', 'edgevoice.plugins') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


EVERY_STAGE_PLUGIN = '''
from dataclasses import dataclass
import numpy as np
from edgevoice import hookimpl
from edgevoice.audio import read_wav
from edgevoice.decoding import GreedyDecoder

@dataclass(frozen=True)
class FileOpts:
    path: str = ""

class LoopSource:
    """Plays a WAV once, like the built-in, to prove sources are pluggable."""
    name, kind, Options, live = "once", "source", FileOpts, False
    def __init__(self, options, ctx):
        self.options = options
    def open(self):
        x, info = read_wav(self.options.path)
        self.sample_rate = info.sample_rate
        self.blocks = [x[i:i + 320] for i in range(0, len(x), 320)]
        self.blocks.append(np.zeros(self.sample_rate, np.float32))
    def read(self):
        return self.blocks.pop(0) if self.blocks else None
    def close(self): pass

@dataclass(frozen=True)
class GainOpts:
    gain: float = 1.0

class Gain:
    """Scales the audio."""
    name, kind, Options = "gain", "denoise", GainOpts
    def __init__(self, options, ctx):
        self.g = options.gain
    def process(self, frame):
        return np.clip(frame * self.g, -32768, 32767).astype(np.int16)
    def reset(self): pass
    def close(self): pass

class Upper(GreedyDecoder):
    """Greedy, shouted."""
    name = "upper"
    def finalize(self):
        r = super().finalize()
        from dataclasses import replace
        return replace(r, text=r.text.upper())

@hookimpl
def register_sources(register):
    register(LoopSource)

@hookimpl
def register_stages(register):
    register(Gain)

@hookimpl
def register_decoders(register):
    register(Upper)
'''


def test_every_stage_kind_can_come_from_a_plugin(tmp_path: Path, bundle_dir: Path) -> None:
    from support import compose, need_fsdd

    need_fsdd()
    wav = compose(tmp_path / "a.wav", ["3_george_1", "5_jackson_2"])
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "every.py").write_text(EVERY_STAGE_PLUGIN)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "bundle": str(bundle_dir), "plugin_dirs": [str(tmp_path / "p")],
        "source": {"name": "once", "path": str(wav)}, "denoise": {"name": "gain", "gain": 0.8},
        "decoder": {"name": "upper"}, "sinks": [{"name": "stdout"}]}))
    out = edgevoice("run", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.splitlines()
    text = json.loads(line)["text"]
    assert text and text == text.upper()


def test_installed_entry_point_plugin_is_found() -> None:
    """The hermes example package (plugins/edgevoice-hermes) is installed by .ci/run."""
    pytest.importorskip("edgevoice_hermes", reason="pip install -e plugins/edgevoice-hermes")
    registry = create_registry()
    assert registry.components["sink"]["hermes"].provider == "hermes"
