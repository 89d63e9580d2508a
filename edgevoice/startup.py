"""What the console scripts do first: cap numpy's BLAS threads before numpy loads, and tell how
long ago the process started (the daemon's "ready in" figure).

This module imports nothing heavy, so calling it is cheap and numpy is still unloaded.
"""

from __future__ import annotations

import os
import sys
import time

# numpy's BLAS (OpenBLAS, or MKL in some builds) starts a worker per core that spins while it
# waits: our matrices are small, so the workers only burn CPU (twice the process's CPU time in
# `transcribe`) and add ~90 ms to every start. OMP_NUM_THREADS caps OpenBLAS builds made with
# OpenMP. The daemon runs nothing else that uses these pools (TFLite has its own threads).
DAEMON_POOLS = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
# The build tool caps only OpenBLAS: TensorFlow builds with MKL or OpenMP size their own pools
# from MKL_NUM_THREADS / OMP_NUM_THREADS, and training wants every core.
BUILD_POOLS = ("OPENBLAS_NUM_THREADS",)

_IMPORTED = time.monotonic()  # fallback origin where /proc is missing


def limit_blas_threads(variables: tuple[str, ...] = DAEMON_POOLS) -> None:
    """Set each variable to 1 unless the user set it; no effect once numpy is loaded (the pools
    are sized at load), so a test process calling main() does not change its children."""
    if "numpy" in sys.modules:
        return
    for name in variables:
        os.environ.setdefault(name, "1")


def seconds_since_start() -> float:
    """Seconds since this process started (/proc: 10 ms resolution), interpreter start-up and
    imports included; since this module was imported where /proc is not available."""
    try:
        with open("/proc/self/stat", "rb") as f:
            stat = f.read()
        # field 22, counted after the parenthesised command name (which may hold spaces)
        ticks = int(stat[stat.rindex(b")") + 2 :].split()[19])
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):
        return time.monotonic() - _IMPORTED
