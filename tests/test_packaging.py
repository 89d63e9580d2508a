"""What a user installs: the wheel and the sdist carry the shipped model bundle and the recipes,
the installed commands run the bundle inside, the plugins build, and the README's Quick start
and test command are what .ci/run and pyproject.toml provide."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest
from support import REPO

tomllib = pytest.importorskip("tomllib")

BUNDLE = REPO / "edgevoice" / "models"
RECIPES = REPO / "edgevoice" / "training" / "recipes"
PLUGINS = sorted(p.parent for p in (REPO / "plugins").glob("*/pyproject.toml"))
# Never in a distribution: build outputs, the tests and their data, benchmarks
NOT_SHIPPED = ("runs/", "tests/", "benchmarks/", "plugins/")


def build(source: Path, out: Path, *what: str) -> Path:
    """`python -m build` as a user runs it (isolated, so pyproject's build requirements count)."""
    if importlib.util.find_spec("build") is None:
        pytest.skip("the build package is not installed: `pip install build` (in the dev extra)")
    done = subprocess.run([sys.executable, "-m", "build", *what, "--outdir", str(out),
                           str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"python -m build {source.name} failed:\n{done.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def checkout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tracked files, as a fresh clone has them: a stale edgevoice.egg-info in the working
    tree would hand setuptools its old file list, and the build leaves the tree alone."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True)
    if listed.returncode != 0:
        pytest.skip(f"not a git checkout, so no list of tracked files: {REPO}")
    copy = tmp_path_factory.mktemp("checkout")
    for name in listed.stdout.decode().split("\0"):
        if name and (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    return copy


@pytest.fixture(scope="module")
def dist(checkout: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # sdist first, then the wheel from the sdist: the wheel proves the sdist is complete too
    return build(checkout, tmp_path_factory.mktemp("dist"))


def shipped_files() -> dict[str, bytes]:
    """Package-relative path -> bytes of every file a fresh install needs beside the code."""
    files = [*BUNDLE.rglob("*"), *RECIPES.glob("*.yaml")]
    return {p.relative_to(REPO).as_posix(): p.read_bytes() for p in files if p.is_file()
            and "__pycache__" not in p.parts}


def test_shipped_files_are_found() -> None:
    names = shipped_files()
    assert "edgevoice/models/digits/model.tflite" in names
    assert "edgevoice/models/digits/bundle.yaml" in names
    assert "edgevoice/training/recipes/digits.yaml" in names


@pytest.mark.packaging
def test_the_wheel_carries_the_bundle_and_the_recipes(dist: Path) -> None:
    (wheel,) = dist.glob("edgevoice-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        for name, data in shipped_files().items():
            assert name in names, f"{name} is not in {wheel.name}"
            assert zf.read(name) == data, f"{name} differs in {wheel.name}"
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]
    assert {n.split("/")[0] for n in names} == {"edgevoice", wheel.name.split("-py3")[0]
                                                + ".dist-info"}


@pytest.mark.packaging
def test_the_sdist_carries_the_bundle_config_and_unit_and_no_tests(dist: Path) -> None:
    (sdist,) = dist.glob("edgevoice-*.tar.gz")
    with tarfile.open(sdist) as tf:
        top = tf.getnames()[0].split("/")[0]
        names = {n.removeprefix(top + "/") for n in tf.getnames()}
    assert set(shipped_files()) <= names
    assert {"pyproject.toml", "README.md", "config/edgevoice.yaml",
            "systemd/edgevoice.service", "systemd/README.md"} <= names
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]


@pytest.mark.packaging
def test_the_installed_commands_run_the_bundle_inside(dist: Path, tmp_path: Path) -> None:
    (wheel,) = dist.glob("edgevoice-*.whl")
    venv = tmp_path / "venv"
    # without PYTHONPATH, where a checkout's edgevoice.egg-info would pass for an installed copy
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"),
                    "install", "-q", "--no-deps", "--disable-pip-version-check", str(wheel)],
                   check=True, env=clean)
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert set(scripts) == {"edgevoice", "edgevoice-build"}
    for name, target in scripts.items():
        module, func = target.split(":")
        text = (venv / "bin" / name).read_text()
        assert os.access(venv / "bin" / name, os.X_OK)
        assert f"from {module} import {func}" in text and text.startswith(f"#!{venv}/bin/")
    # The installed command, the installed package and its bundle; the dependencies are this
    # environment's (on PYTHONPATH, where its editable edgevoice is not importable).
    env = {**clean, "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    done = subprocess.run([str(venv / "bin" / "edgevoice"), "model"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    installed = next(venv.glob("lib/python*/site-packages/edgevoice/models/digits"))
    assert f"at {installed}\n" in done.stdout and "verified (sha256)" in done.stdout


@pytest.mark.packaging
@pytest.mark.parametrize("plugin", PLUGINS, ids=[p.name for p in PLUGINS])
def test_each_plugin_builds_a_wheel_with_its_entry_points(plugin: Path, checkout: Path,
                                                         tmp_path: Path) -> None:
    project = tomllib.loads((plugin / "pyproject.toml").read_text())["project"]
    (wheel,) = build(checkout / "plugins" / plugin.name, tmp_path, "--wheel").glob("*.whl")
    package = plugin.name.replace("-", "_")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        entry_points = zf.read(f"{wheel.name.split('-py3')[0]}.dist-info/entry_points.txt")
    assert f"{package}/__init__.py" in names
    assert not [n for n in names if n.startswith(NOT_SHIPPED)]
    for group in ("scripts", "entry-points"):
        declared = project.get(group, {})
        for name, target in (declared.get("edgevoice", {}) if group == "entry-points"
                             else declared).items():
            assert f"{name} = {target}" in entry_points.decode()


def readme_section(title: str) -> str:
    text = (REPO / "README.md").read_text()
    start = text.index(f"\n## {title}")
    end = text.find("\n## ", start + 1)
    return text[start:end]


def commands(block: str) -> list[str]:
    """Shell commands of a code block: continuation lines joined, comments and blanks dropped."""
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.split(" #")[0].strip() for line in joined.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, re.S)


def test_the_readme_test_command_is_what_ci_runs() -> None:
    readme = [c for block in bash_blocks(readme_section("Tests")) for c in commands(block)]
    assert readme[0] == "bash .ci/run", "the Tests section starts with the CI script"
    ci = commands((REPO / ".ci" / "run").read_text())
    # .ci/run ends in the README's test command, so its exit status is the tests'
    assert readme[1:] == [ci[-1]]
    assert shlex.split(ci[-1])[1:3] == ["-m", "pytest"]


def test_the_quick_start_is_install_then_run_and_needs_no_sudo_as_root() -> None:
    section = readme_section("Quick start")
    install, run = commands(bash_blocks(section)[0])
    assert run == "edgevoice run"
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert "edgevoice" in pyproject["scripts"]
    (extras,) = re.findall(r"pipx install [^&]*'\./\[([\w,]+)\]'", install)
    assert set(extras.split(",")) <= set(pyproject["optional-dependencies"])
    assert "pipx ensurepath" in install
    # root on Debian often has no sudo: every use goes through $sudo, empty there
    assert not re.search(r"(^|[;&|]\s*)sudo ", install)
