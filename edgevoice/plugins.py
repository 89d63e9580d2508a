"""Plugin manager: built-ins, entry points (group "edgevoice") and plugin directories.

Built-in components are registered through the same hooks as third-party ones. A plugin that
fails to import is recorded, not fatal: it only becomes an error when the config uses one of
the names it would have provided.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
import os
import sys
from dataclasses import dataclass, field, is_dataclass
from pathlib import Path
from typing import Any, Literal, get_args, overload

import pluggy

from edgevoice import contracts, hookspecs
from edgevoice.errors import PluginError
from edgevoice.options import suggest

log = logging.getLogger("edgevoice.plugins")

KINDS: tuple[str, ...] = get_args(contracts.Kind)
ENTRY_POINT_GROUP = "edgevoice"
TRACE_ENV = "EDGEVOICE_TRACE_HOOKS"


@dataclass
class Registered:
    cls: type[contracts.Component]  # checked against its kind's protocol when it was registered
    provider: str


@dataclass
class Registry:
    """Every component the loaded plugins provide, by kind and name."""

    pm: pluggy.PluginManager
    components: dict[str, dict[str, Registered]] = field(
        default_factory=lambda: {k: {} for k in KINDS})
    failures: dict[str, str] = field(default_factory=dict)  # plugin name -> why it failed

    @overload
    def get(self, kind: Literal["source"], name: str, where: str) -> type[contracts.Source]: ...
    @overload
    def get(self, kind: Literal["denoise"], name: str, where: str) -> type[contracts.Denoiser]: ...
    @overload
    def get(self, kind: Literal["vad"], name: str, where: str) -> type[contracts.Vad]: ...
    @overload
    def get(self, kind: Literal["frontend"], name: str, where: str) -> type[contracts.Frontend]: ...
    @overload
    def get(self, kind: Literal["model"], name: str, where: str) -> type[contracts.Model]: ...
    @overload
    def get(self, kind: Literal["decoder"], name: str, where: str) -> type[contracts.Decoder]: ...
    @overload
    def get(self, kind: Literal["sink"], name: str, where: str) -> type[contracts.Sink]: ...
    @overload
    def get(self, kind: str, name: str, where: str) -> type[contracts.Component]: ...

    def get(self, kind: str, name: str, where: str) -> type[contracts.Component]:
        """The class registered as `name` of `kind`; a PluginError with what is available."""
        found = self.components[kind].get(name)
        if found is not None:
            return found.cls
        msg = f"{where}: unknown {kind} {name!r}{suggest(name, self.components[kind])}"
        known = ", ".join(sorted(self.components[kind])) or "none"
        msg += f"; available: {known}"
        if self.failures:
            broken = "; ".join(f"{p} ({why})" for p, why in self.failures.items())
            msg += f"; plugins that failed to load: {broken}"
        raise PluginError(msg)

    @property
    def hook(self) -> Any:
        return self.pm.hook


def _provider_name(pm: pluggy.PluginManager, plugin: object) -> str:
    return str(pm.get_name(plugin) or getattr(plugin, "__name__", repr(plugin)))


def _load_entry_points(pm: pluggy.PluginManager, failures: dict[str, str]) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
        except Exception as exc:  # a broken plugin must not take the daemon down
            dist = ep.dist.name if ep.dist else ep.value
            failures[ep.name] = (f"import of {ep.value} failed: {type(exc).__name__}: {exc}; "
                                 f"fix or `pip uninstall {dist}`")
            continue
        _register(pm, module, ep.name, failures)


def _load_dir(pm: pluggy.PluginManager, folder: Path, failures: dict[str, str]) -> None:
    if not folder.is_dir():
        failures[str(folder)] = "plugin directory does not exist"
        return
    for path in sorted(folder.glob("*.py")):
        name = f"edgevoice_dir_plugin_{path.stem}"
        try:
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
        except Exception as exc:
            failures[str(path)] = f"import failed: {type(exc).__name__}: {exc}"
            sys.modules.pop(name, None)
            continue
        _register(pm, module, str(path), failures)


def _register(pm: pluggy.PluginManager, module: Any, name: str, failures: dict[str, str]
              ) -> None:
    """Register a plugin module; a hook with the wrong signature is that plugin's failure."""
    try:
        pm.register(module, name=name)
    except pluggy.PluginValidationError as exc:
        failures[name] = f"invalid hook implementation: {exc}"


def create_registry(plugin_dirs: tuple[str | Path, ...] = (), entry_points: bool = True,
                    ) -> Registry:
    """A plugin manager with built-ins, entry-point plugins and directory plugins, and the
    components they register. Duplicate names are a PluginError naming both providers."""
    from edgevoice.stages import builtin

    pm = pluggy.PluginManager("edgevoice")
    pm.add_hookspecs(hookspecs)
    if os.environ.get(TRACE_ENV):
        pm.trace.root.setwriter(lambda msg: print(msg, end="", file=sys.stderr))
        pm.enable_tracing()
    pm.register(builtin, name="edgevoice")
    failures: dict[str, str] = {}
    if entry_points:
        _load_entry_points(pm, failures)
    for folder in plugin_dirs:
        _load_dir(pm, Path(folder).expanduser(), failures)
    registry = Registry(pm=pm, failures=failures)
    for hook in (pm.hook.register_sources, pm.hook.register_stages,
                 pm.hook.register_decoders, pm.hook.register_sinks):
        for impl in hook.get_hookimpls():
            provider = _provider_name(pm, impl.plugin)
            try:
                impl.function(register=lambda cls, p=provider: _add(registry, cls, p))
            except PluginError:
                raise
            except Exception as exc:
                registry.failures[provider] = f"{hook.name} failed: {type(exc).__name__}: {exc}"
    return registry


def _add(registry: Registry, cls: type, provider: str) -> None:
    """Register one component class, refusing one that does not fit its kind's protocol
    (edgevoice.contracts): the plugin's author hears of it at start-up, not mid-utterance."""
    kind, name = getattr(cls, "kind", None), getattr(cls, "name", None)
    if kind not in KINDS:
        raise PluginError(f"plugin {provider}: {cls.__qualname__}.kind is {kind!r}, "
                          f"expected one of {', '.join(KINDS)}")
    if not isinstance(name, str) or not name:
        raise PluginError(f"plugin {provider}: {cls.__qualname__} has no `name`")
    if not is_dataclass(getattr(cls, "Options", None)):
        raise PluginError(f"plugin {provider}: {cls.__qualname__} has no `Options` dataclass")
    lacking, abstract = contracts.missing_members(cls, kind)
    where = f"plugin {provider}: {kind} {name!r} ({cls.__qualname__})"
    if lacking:
        protocol = contracts.PROTOCOLS[kind].__name__
        raise PluginError(f"{where} lacks {', '.join(lacking)}, which every {kind} needs "
                          f"(see edgevoice.contracts.{protocol})")
    if abstract:
        raise PluginError(f"{where} leaves {', '.join(abstract)} abstract: implement it")
    have = registry.components[kind].get(name)
    if have is not None:
        raise PluginError(f"{kind} {name!r} is provided twice: by {have.provider} "
                          f"({have.cls.__module__}) and by {provider} ({cls.__module__}); "
                          "uninstall one or rename its component")
    registry.components[kind][name] = Registered(cls, provider)
