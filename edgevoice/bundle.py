"""Model bundles: a directory with model.tflite, bundle.yaml, optional lm.arpa, MODEL_CARD.md and
metrics.json (the evaluation figures, read only when asked for: parsing them at every start of
the daemon cost it about 37 ms).

`load_bundle` reads bundle.yaml with the one validator (`edgevoice.options`: every problem at
once, with its YAML path and line) and refuses a bundle whose files do not match the sha256
recorded there, so a half-copied or corrupted model never reaches the interpreter.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from edgevoice.errors import BundleError, problems_message
from edgevoice.features import LogMel, LogMelSettings
from edgevoice.options import REQUIRED, at, load_yaml, opt, validate

log = logging.getLogger("edgevoice.bundle")

BUNDLE_FORMAT = 1
BUNDLE_FILE = "bundle.yaml"
METRICS_FILE = "metrics.json"
BUILTIN_PREFIX = "builtin:"
BUILTIN_DIR = Path(__file__).parent / "models"
DEFAULT_BUNDLE = "builtin:digits"


@dataclass(frozen=True)
class StreamingSpec:
    """How the acoustic model is run in chunks.

    The model is causal: output frame t depends only on input frames <= t * stride. It takes a
    fixed window of `window` feature frames; the first `context` of them are left context whose
    outputs are discarded, so each call yields (window - context) / stride new output frames.
    """

    window: int
    context: int
    stride: int

    @property
    def step(self) -> int:
        return self.window - self.context


@dataclass(frozen=True)
class Bundle:
    path: Path
    name: str
    version: str
    sample_rate: int
    frontend: LogMelSettings
    tokens: tuple[str, ...]
    blank: int
    model_file: Path
    streaming: StreamingSpec
    lm_file: Path | None = None
    decoder: dict[str, Any] = field(default_factory=dict)
    metrics_file: Path | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @cached_property
    def metrics(self) -> dict[str, Any]:
        """The figures from evaluation: metrics.json (hashed under `files` like every file of
        the bundle), or bundle.yaml's own `metrics` in a bundle exported before they moved."""
        if self.metrics_file is None:
            return dict(self.raw.get("metrics") or {})
        try:
            data = json.loads(self.metrics_file.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise BundleError(f"{self.metrics_file}: cannot read the evaluation figures "
                              f"({getattr(exc, 'strerror', None) or exc}): copy the bundle "
                              "again or rebuild it") from None
        if not isinstance(data, dict):
            raise BundleError(f"{self.metrics_file}: expected a JSON object of figures, got "
                              f"{type(data).__name__}: copy the bundle again or rebuild it")
        return data

    def describe(self) -> str:
        lm = f", LM {self.lm_file.name}" if self.lm_file else ""
        return (
            f"{self.name} {self.version} ({self.sample_rate} Hz, {len(self.tokens)} tokens, "
            f"{self.model_file.stat().st_size // 1024} KiB model{lm}) at {self.path}"
        )


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def resolve_bundle_path(spec: str | Path, models_dir: Path | None = None) -> Path:
    """`builtin:NAME`, a bundle directory, or a NAME found in `models_dir`."""
    text = str(spec)
    if text.startswith(BUILTIN_PREFIX):
        path = BUILTIN_DIR / text[len(BUILTIN_PREFIX) :]
        if not path.is_dir():
            have = sorted(p.name for p in BUILTIN_DIR.iterdir() if (p / BUNDLE_FILE).exists())
            raise BundleError(
                f"no built-in model bundle {text!r} (built-in: {', '.join(have) or 'none'}); "
                "build one with `edgevoice-build recipe`"
            )
        return path
    path = Path(text).expanduser()
    if not path.exists() and models_dir is not None and (models_dir / text).is_dir():
        path = models_dir / text
    if not path.exists():
        raise BundleError(f"model bundle {text}: no such directory")
    if path.is_file():
        raise BundleError(f"model bundle {text}: is a file; give the directory holding bundle.yaml")
    return path


@dataclass(frozen=True, kw_only=True)
class ModelSection:
    """bundle.yaml `model`: the acoustic model and how it is run in chunks (StreamingSpec)."""

    file: str = opt(REQUIRED, "the INT8 TFLite model, a file of the bundle")
    window: int = opt(REQUIRED, "feature frames per call", min=1)
    context: int = opt(REQUIRED, "of them, left context whose outputs are discarded", min=0)
    stride: int = opt(REQUIRED, "input frames per output frame", min=1)
    arch: str = opt("", "the architecture it was built with")
    receptive_field: int = opt(0, "input frames one output frame depends on", min=0)


@dataclass(frozen=True, kw_only=True)
class TensorSection:
    """bundle.yaml `input` and `output`: the model's tensors as the build tool saw them."""

    shape: tuple[int, ...] = opt(REQUIRED, "dimensions", min=0)
    dtype: str = opt(REQUIRED, "element type, e.g. int8")
    scale: float = opt(REQUIRED, "quantization scale")
    zero_point: int = opt(REQUIRED, "quantization zero point")


@dataclass(frozen=True, kw_only=True)
class LMSection:
    """bundle.yaml `lm`: the optional word n-gram language model."""

    file: str = opt(REQUIRED, "ARPA file, a file of the bundle")
    order: int = opt(0, "n-gram order", min=0)
    smoothing: str = opt("", "how its counts were smoothed")


@dataclass(frozen=True, kw_only=True)
class Manifest:
    """bundle.yaml as edgevoice-build's export writes it; `Bundle` is what the daemon uses."""

    format: int = opt(REQUIRED, f"bundle format; this edgevoice reads {BUNDLE_FORMAT}")
    name: str = opt(REQUIRED, "bundle name")
    version: str = opt("0", "bundle version")
    description: str = opt("", "what it recognises")
    sample_rate: int = opt(REQUIRED, "audio rate the model expects, Hz", min=1)
    frontend: dict[str, Any] = opt(REQUIRED, "feature settings (LogMelSettings and a name)")
    tokens: tuple[str, ...] = opt(REQUIRED, "the model's output symbols")
    blank: int = opt(REQUIRED, "index of the CTC blank among tokens", min=0)
    model: ModelSection = opt(REQUIRED, "the acoustic model")
    input: TensorSection | None = opt(None, "the model's input tensor")
    output: TensorSection | None = opt(None, "the model's output tensor")
    decoder: dict[str, Any] | None = opt(None, "the daemon's default decoder block")
    denoise: dict[str, Any] | None = opt(None, "the denoiser the model was trained behind")
    lm: LMSection | None = opt(None, "the word language model, if any")
    training: dict[str, Any] | None = opt(None, "the command and recipe it was built with")
    metrics: dict[str, Any] | None = opt(None, "figures from evaluation, in a bundle "
                                         f"exported before they moved to {METRICS_FILE}")
    credits: tuple[str, ...] = opt((), "data and engines it owes")
    build_time: dict[str, Any] | None = opt(None, "seconds per build stage")
    files: dict[str, str] = opt(REQUIRED, "sha256 of every file of the bundle")
    content_sha256: str | None = opt(None, "sha256 of this document's other values (see "
                                     "content_digest): bundle.yaml is verified too")


def load_bundle(spec: str | Path, models_dir: Path | None = None, verify: bool = True) -> Bundle:
    """Load and (by default) verify a bundle; BundleError says what is wrong and where."""
    path = resolve_bundle_path(spec, models_dir)
    manifest = path / BUNDLE_FILE
    where = str(manifest)
    if not manifest.exists():
        raise BundleError(f"{path}: not a model bundle (no {BUNDLE_FILE})")
    try:
        # libyaml's safe loader where PyYAML has it: the pure-Python parser is several times
        # slower, and a user's bundle may still carry its figures in bundle.yaml.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        meta, lines = load_yaml(manifest.read_text(encoding="utf-8"), loader)
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid YAML ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{where}: cannot read ({exc.strerror})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{where}: expected a mapping at the top level")
    if meta.get("format") != BUNDLE_FORMAT:  # before the keys: another format has others
        raise BundleError(f"{where}: {at('format', lines)}: bundle format {meta.get('format')!r}, "
                          f"this edgevoice reads format {BUNDLE_FORMAT}")
    problems: list[str] = []
    m = validate(Manifest, meta, "", problems, lines=lines)
    frontend = meta.get("frontend")
    settings = (validate(LogMelSettings, frontend, "frontend", problems, ("name",), lines=lines)
                if isinstance(frontend, dict) else None)
    if m is None or settings is None:
        raise BundleError(problems_message(where, problems))
    problems += _check(m, settings, lines)
    if problems:
        raise BundleError(problems_message(where, problems))
    if verify:
        verify_content(manifest, meta, m.content_sha256)
        verify_files(path, m.files)
    if problems:
        raise BundleError(problems_message(where, problems))
    lm = m.lm.file if m.lm else None
    return Bundle(
        path=path,
        name=m.name,
        version=m.version,
        sample_rate=m.sample_rate,
        frontend=settings,
        tokens=m.tokens,
        blank=m.blank,
        model_file=path / m.model.file,
        streaming=StreamingSpec(window=m.model.window, context=m.model.context,
                                stride=m.model.stride),
        lm_file=path / lm if lm else None,
        decoder=dict(m.decoder or {}),
        metrics_file=path / METRICS_FILE if METRICS_FILE in m.files else None,
        raw=meta,
    )


def _check(m: Manifest, settings: LogMelSettings, lines: dict[str, int]) -> list[str]:
    """What bundle.yaml's sections must agree on."""
    problems = []
    for name in m.files:  # each file of the bundle sits in its folder, under its own name
        if not _plain(name):
            problems.append(f"{at(f'files.{name}', lines)}: {name!r} is not a file name in the "
                            "bundle's folder (no paths: files must stay inside the bundle)")
    if m.model.file not in m.files:
        problems.append(f"{at('model.file', lines)}: model file {m.model.file!r} has no sha256 "
                        "under 'files'")
    if m.lm and m.lm.file not in m.files:
        problems.append(f"{at('lm.file', lines)}: LM file {m.lm.file} has no sha256 under "
                        "'files'")
    if m.blank >= len(m.tokens):
        problems.append(f"{at('blank', lines)}: blank index {m.blank} is outside the "
                        f"{len(m.tokens)} tokens")
    window, context, stride = m.model.window, m.model.context, m.model.stride
    if window <= context or (window - context) % stride or context % stride:
        problems.append(f"{at('model', lines)}: window {window}, context {context} and stride "
                        f"{stride} are inconsistent (window - context and context must be "
                        "multiples of stride)")
    try:
        LogMel(settings)  # checks band, window and FFT sizes
    except (TypeError, ValueError) as exc:
        problems.append(f"{at('frontend', lines)}: {exc}")
    for key in ("mean", "std"):
        values = getattr(settings, key)
        if values and len(values) != settings.n_mels:
            problems.append(f"{at(f'frontend.{key}', lines)}: {len(values)} values for "
                            f"{settings.n_mels} mel bands")
    if settings.sample_rate != m.sample_rate:
        problems.append(f"{at('frontend.sample_rate', lines)}: {settings.sample_rate} Hz, the "
                        f"bundle's sample_rate is {m.sample_rate}")
    return problems


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and Path(name).name == name and "\\" not in name


def content_digest(meta: dict[str, Any]) -> str:
    """sha256 of bundle.yaml's values but `content_sha256` itself, in a canonical JSON form
    (so the same values give the same digest however the YAML is laid out)."""
    body = {k: v for k, v in meta.items() if k != "content_sha256"}
    text = json.dumps(body, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_content(manifest: Path, meta: dict[str, Any], recorded: str | None) -> None:
    """Tokens, frontend values and file names are read from bundle.yaml: an edit to them must
    not load silently."""
    if recorded is None:
        log.warning("%s has no content_sha256 (a bundle from before edgevoice verified it): "
                    "its values are not checked; rebuild or re-export it", manifest)
        return
    actual = content_digest(meta)
    if actual != recorded:
        raise BundleError(f"{manifest}: its values were edited (content_sha256 says "
                          f"{recorded[:12]}…, the values give {actual[:12]}…): copy the bundle "
                          "again or rebuild it")


def verify_files(path: Path, files: dict[str, str]) -> None:
    root = path.resolve()
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: file {name} listed in {BUNDLE_FILE} is missing")
        if not f.resolve().is_relative_to(root):
            raise BundleError(f"{f}: a link to {f.resolve()}, outside the bundle: copy the "
                              "file into the bundle instead")
        try:
            actual = sha256_file(f)
        except OSError as exc:
            raise BundleError(f"{f}: cannot read ({exc.strerror})") from None
        if actual != digest:
            raise BundleError(
                f"{f}: sha256 mismatch (bundle says {str(digest)[:12]}…, file is {actual[:12]}…); "
                "the bundle is corrupt or was edited: copy it again or rebuild it"
            )


def write_manifest(path: Path, meta: dict[str, Any]) -> Path:
    """Write bundle.yaml for the files in `path`, recording the sha256 of each."""
    meta = dict(meta)
    meta["format"] = BUNDLE_FORMAT
    meta["files"] = {
        f.name: sha256_file(f)
        for f in sorted(path.iterdir())
        if f.is_file() and f.name != BUNDLE_FILE and not f.name.startswith(".")
    }
    meta.pop("content_sha256", None)
    meta["content_sha256"] = content_digest(meta)
    out = path / BUNDLE_FILE
    out.write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out
