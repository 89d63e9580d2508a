"""Fixtures come from the main suite's support.py (tests/ is on pytest's pythonpath)."""

from support import broker, bundle_dir, recorder  # noqa: F401
