"""edgevoice: offline streaming speech recognition for edge devices."""

from __future__ import annotations

from edgevoice.hookspecs import hookimpl

__all__ = ["hookimpl"]
__version__ = "0.1.0"
