"""Model bundles: a directory with model.tflite, bundle.yaml, optional lm.arpa and MODEL_CARD.md.

`load_bundle` refuses a bundle whose files do not match the sha256 recorded in bundle.yaml, so a
half-copied or corrupted model never reaches the interpreter.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgevoice.errors import BundleError
from edgevoice.features import LogMel, LogMelSettings

BUNDLE_FORMAT = 1
BUNDLE_FILE = "bundle.yaml"
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
    metrics: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)

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


def _need(d: dict, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    if key not in d:
        raise BundleError(f"{where}: missing key {key!r}")
    value = d[key]
    if not isinstance(value, kind):
        raise BundleError(f"{where}: {key!r} has the wrong type ({type(value).__name__})")
    return value


def load_bundle(spec: str | Path, models_dir: Path | None = None, verify: bool = True) -> Bundle:
    """Load and (by default) verify a bundle; BundleError says what is wrong and where."""
    path = resolve_bundle_path(spec, models_dir)
    manifest = path / BUNDLE_FILE
    where = str(manifest)
    if not manifest.exists():
        raise BundleError(f"{path}: not a model bundle (no {BUNDLE_FILE})")
    try:
        # libyaml's safe loader where PyYAML has it: the evaluation figures make bundle.yaml
        # long, and the pure-Python parser would add a quarter of a second to every start.
        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        meta = yaml.load(manifest.read_text(encoding="utf-8"), Loader=loader)  # noqa: S506
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise BundleError(f"{where}: not valid YAML ({exc})") from None
    except OSError as exc:
        raise BundleError(f"{where}: cannot read ({exc.strerror})") from None
    if not isinstance(meta, dict):
        raise BundleError(f"{where}: expected a mapping at the top level")
    if meta.get("format") != BUNDLE_FORMAT:
        raise BundleError(f"{where}: bundle format {meta.get('format')!r}, this edgevoice reads "
                          f"format {BUNDLE_FORMAT}")
    files = _need(meta, "files", dict, where)
    if verify:
        verify_files(path, files)
    model = _need(meta, "model", dict, where)
    model_file = path / _need(model, "file", str, where + ": model")
    if model_file.name not in files:
        raise BundleError(f"{where}: model file {model_file.name} has no sha256 under 'files'")
    tokens = _need(meta, "tokens", list, where)
    blank = _need(meta, "blank", int, where)
    if not 0 <= blank < len(tokens):
        raise BundleError(f"{where}: blank index {blank} is outside the {len(tokens)} tokens")
    frontend = _need(meta, "frontend", dict, where)
    try:
        settings = LogMelSettings.from_dict(frontend)
        LogMel(settings)  # checks band, window and FFT sizes
    except (TypeError, ValueError) as exc:
        raise BundleError(f"{where}: frontend: {exc}") from None
    for key in ("mean", "std"):
        values = getattr(settings, key)
        if values and len(values) != settings.n_mels:
            raise BundleError(f"{where}: frontend.{key} has {len(values)} values for "
                              f"{settings.n_mels} mel bands")
    rate = _need(meta, "sample_rate", int, where)
    if settings.sample_rate != rate:
        raise BundleError(f"{where}: frontend sample_rate {settings.sample_rate} != {rate}")
    stream = StreamingSpec(
        window=_need(model, "window", int, where + ": model"),
        context=_need(model, "context", int, where + ": model"),
        stride=_need(model, "stride", int, where + ": model"),
    )
    if stream.step <= 0 or stream.step % stream.stride or stream.context % stream.stride:
        raise BundleError(f"{where}: model window/context/stride are inconsistent: {stream}")
    lm_name = (meta.get("lm") or {}).get("file") if isinstance(meta.get("lm"), dict) else None
    if lm_name and lm_name not in files:
        raise BundleError(f"{where}: LM file {lm_name} has no sha256 under 'files'")
    return Bundle(
        path=path,
        name=str(_need(meta, "name", str, where)),
        version=str(meta.get("version", "0")),
        sample_rate=rate,
        frontend=settings,
        tokens=tuple(str(t) for t in tokens),
        blank=blank,
        model_file=model_file,
        streaming=stream,
        lm_file=path / lm_name if lm_name else None,
        decoder=dict(meta.get("decoder") or {}),
        metrics=dict(meta.get("metrics") or {}),
        raw=meta,
    )


def verify_files(path: Path, files: dict[str, str]) -> None:
    for name, digest in files.items():
        f = path / name
        if not f.is_file():
            raise BundleError(f"{path}: file {name} listed in {BUNDLE_FILE} is missing")
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
    out = path / BUNDLE_FILE
    out.write_text(yaml.safe_dump(meta, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return out
