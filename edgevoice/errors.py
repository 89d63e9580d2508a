"""One small exception hierarchy: every user-facing failure says what, where and how to fix it."""

from __future__ import annotations


class EdgevoiceError(Exception):
    """Base class for errors a user can act on; the CLI prints them as one line."""


class ConfigError(EdgevoiceError):
    """The YAML configuration is invalid; the message lists every problem with its YAML path."""

    def __init__(self, problems: list[str], source: str = "config") -> None:
        self.problems = list(problems)
        self.source = source
        super().__init__(problems_message(source, self.problems))


def problems_message(source: str, problems: list[str]) -> str:
    """How every validation error reads (config, recipe, bundle): the file, then each problem
    with its YAML path, all at once."""
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    lines = "\n".join(f"  - {p}" for p in problems)
    return f"{source}: {len(problems)} problems:\n{lines}"


class PluginError(EdgevoiceError):
    """A plugin failed to load, or two plugins claim the same component name."""


class AudioError(EdgevoiceError):
    """An audio file or device cannot be used (wrong format, unreadable, missing)."""


class BundleError(EdgevoiceError):
    """A model bundle is missing, corrupt or inconsistent."""


class LMError(EdgevoiceError):
    """A language model file is malformed or does not fit the model's tokens."""


class SinkError(EdgevoiceError):
    """A sink could not deliver transcripts (for example, the broker stayed unreachable)."""


class BuildError(EdgevoiceError):
    """edgevoice-build cannot go on: bad data, recipe, tool or stage output (names which, where)."""
