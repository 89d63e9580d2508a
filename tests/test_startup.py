"""Console-script start-up: BLAS threads capped before numpy loads, a true readiness figure."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from edgevoice import startup

REPORT = """
import os, sys
try:
    {call}
except SystemExit:
    pass
print(os.environ.get("OPENBLAS_NUM_THREADS"), os.environ.get("OMP_NUM_THREADS"),
      "numpy" in sys.modules)
"""


def _run(call: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", REPORT.format(call=call)], check=True,
                         capture_output=True, text=True, env={**clean, **env})
    return out.stdout.split()[-3:]


@pytest.mark.parametrize("module", ["edgevoice.cli", "edgevoice.training.cli"])
def test_console_modules_import_without_numpy(module: str) -> None:
    """main() caps the pools before any numpy import only while these modules leave it out."""
    assert _run(f"import {module}") == ["None", "None", "False"]


def test_daemon_caps_blas_and_openmp_but_keeps_the_users_value() -> None:
    call = "from edgevoice.cli import main; main(['model'])"
    assert _run(call) == ["1", "1", "True"]
    assert _run(call, OPENBLAS_NUM_THREADS="3") == ["3", "1", "True"]


def test_build_tool_leaves_openmp_to_tensorflow() -> None:
    assert _run("from edgevoice.training.cli import main; main(['--help'])")[:2] == ["1", "None"]


def test_seconds_since_start_counts_the_interpreter_start() -> None:
    """The process started before this test ran, so its age exceeds this module's import."""
    age = startup.seconds_since_start()
    assert 0 < age < time.monotonic()
    code = "from edgevoice.startup import seconds_since_start as s; print(s())"
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    # a fresh interpreter takes well over 5 ms to reach the call; the /proc tick is 10 ms
    assert 0.005 < float(out) <= time.monotonic() - t0 + 0.02
