"""edgevoice: offline streaming speech recognition for edge devices.

What a plugin needs is importable from here. Importing it loads nothing heavy: the names that
need numpy (Segmenter and its options, StageContext) are imported on first use.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from edgevoice.errors import PluginError
from edgevoice.hookspecs import hookimpl
from edgevoice.options import opt

if TYPE_CHECKING:
    from edgevoice.components import StageContext
    from edgevoice.stages.vad import Segmenter, SegmenterOptions

__all__ = ["PluginError", "Segmenter", "SegmenterOptions", "StageContext", "hookimpl", "opt"]
__version__ = "0.1.0"

_LAZY = {"Segmenter": "edgevoice.stages.vad", "SegmenterOptions": "edgevoice.stages.vad",
         "StageContext": "edgevoice.components"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'edgevoice' has no attribute {name!r}")
