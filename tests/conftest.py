"""Fixtures live in support.py so plugin packages' tests can share them."""

from support import broker, bundle_dir, recorder  # noqa: F401
