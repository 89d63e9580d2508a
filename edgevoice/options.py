"""Typed options: validate a YAML mapping into a frozen dataclass, collecting every error.

The one validator of edgevoice: daemon settings, component options, build recipes and bundle
manifests. Each declares frozen dataclasses; field types drive validation (bool, int, float,
str, Literal, Optional, list, tuple, dict, nested dataclasses); `opt(...)` adds `help` and
`min`/`max` bounds (for a list of numbers, on each item). Unknown keys are errors with a "did
you mean". Each problem reads "path: what is wrong", or "line N: path: ..." given the YAML's
line index (`load_yaml`).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import reprlib
import types
import typing
from collections.abc import Mapping
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")
# `opt(REQUIRED, ...)`: an option without a default (the dataclass needs kw_only=True).
REQUIRED: Any = dataclasses.MISSING


_SHORT = reprlib.Repr()
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict, _SHORT.maxlevel = 60, 60, 4, 4, 2


def short(value: Any) -> str:
    """A value as messages show it: bounded, however large the value (an alias bomb)."""
    return _SHORT.repr(value)


def suggest(name: str, choices: typing.Iterable[str]) -> str:
    """' (did you mean "x"?)' for the closest choice, or ''."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f' (did you mean "{close[0]}"?)' if close else ""


def join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


MAX_YAML_NODES = 100_000  # after aliases are expanded: an alias bomb stops here, not in RAM
MAX_YAML_DEPTH = 64


def load_yaml(text: str, loader: type | None = None) -> tuple[Any, dict[str, int]]:
    """Parse YAML once into its data and a YAML path -> line index, for messages. `loader`
    must be a safe one (yaml.SafeLoader, the default, or yaml.CSafeLoader). A document that
    nests too deeply or whose aliases expand too far raises YAMLError before it is built, as
    does any syntax error."""
    import yaml

    parser = (loader or yaml.SafeLoader)(text)
    try:
        try:
            node = parser.get_single_node()
        except RecursionError:
            raise yaml.YAMLError(f"nested more than {MAX_YAML_DEPTH} levels deep") from None
        problem = yaml_size_problem(node)
        if problem:
            raise yaml.YAMLError(problem)
        try:
            data = parser.construct_document(node) if node is not None else None
        except (ValueError, TypeError, AttributeError, OverflowError) as exc:
            # PyYAML's own constructors fail this way on `!!int abc`, a 13th month, an
            # integer of 5,000 digits: the file is at fault, so it is a YAML error
            raise yaml.YAMLError(f"a value cannot be read: {str(exc)[:120]}") from None
    finally:
        parser.dispose()
    return data, yaml_lines(node)


def yaml_size_problem(root: Any) -> str | None:
    """Why a composed node tree is too big to build (too deep, or aliases that expand to too
    many values), or None. Each node's expanded size is counted once: cheap on a bomb."""
    import yaml

    def children(node: Any) -> list[Any]:
        if isinstance(node, yaml.SequenceNode):
            return list(node.value)
        if isinstance(node, yaml.MappingNode):
            return [n for pair in node.value for n in pair]
        return []

    if root is None:
        return None
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, done = stack.pop()
        line = node.start_mark.line + 1
        if depth > MAX_YAML_DEPTH:
            return f"line {line}: nested more than {MAX_YAML_DEPTH} levels deep"
        kids = children(node)
        if done:
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in kids)
            if sizes[id(node)] > MAX_YAML_NODES:
                return (f"line {line}: expands to more than {MAX_YAML_NODES} values (aliases "
                        "of aliases?)")
        elif id(node) not in sizes:
            stack.append((node, depth, True))
            stack.extend((c, depth + 1, False) for c in kids if id(c) not in sizes)
    return None


def yaml_lines(node: Any, path: str = "") -> dict[str, int]:
    """YAML path (as `validate` writes it) -> 1-based line, from a composed node tree."""
    import yaml

    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = join(path, str(key.value))
                out[here] = key.start_mark.line + 1
                out.update(yaml_lines(value, here))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = join(path, i)
            out[here] = item.start_mark.line + 1
            out.update(yaml_lines(item, here))
    return out


def at(path: str, lines: Mapping[str, int] | None = None) -> str:
    """`path` for a message, "line N: path" when the line is known."""
    where = path or "top level"
    if lines and path in lines:
        return f"line {lines[path]}: {where}"
    return where


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (list, tuple):
        args = typing.get_args(tp)
        if origin is tuple and args[-1] is not Ellipsis:
            names = [_type_name(a) for a in args]
            if len(set(names)) == 1:
                return f"list of {len(args)} {names[0]}"
            return f"list of {len(args)} ({', '.join(names)})"
        return f"list of {_type_name(args[0])}"
    if origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {short(value)}"


def validate(cls: type[T], data: Any, path: str, errors: list[str],
             ignore: tuple[str, ...] = (), *, lines: Mapping[str, int] | None = None,
             partial: bool = False) -> T | None:
    """Build dataclass `cls` from mapping `data`; append 'path: problem' strings to `errors`
    ('line N: path: problem' where `lines`, a YAML path -> line index, knows the path).

    Returns None after a problem, or with `partial` an instance with defaults in place of the
    invalid options (None if one without a default is invalid), so that checks across
    options can still run and every problem be reported at once."""
    return _Run(errors, lines, partial).validate(cls, data, path, ignore)


@dataclasses.dataclass
class _Run:
    """One validation: where problems go, the line index, whether to build partial results."""

    errors: list[str]
    lines: Mapping[str, int] | None
    partial: bool

    def problem(self, path: str, text: str) -> None:
        self.errors.append(f"{at(path, self.lines)}: {text}")

    def validate(self, cls: type[T], data: Any, path: str, ignore: tuple[str, ...] = ()
                 ) -> T | None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            self.problem(path, f"expected a mapping, got {_describe(data)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
        before = len(self.errors)
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ignore:
                continue
            here = join(path, str(key))
            if key not in fields:
                self.problem(here, f"unknown option{suggest(str(key), fields)}")
                continue
            mark = len(self.errors)
            converted = self.convert(hints[key], value, here)
            self.check_range(fields[key], converted, here)
            # A nested section's partial result stands; any other invalid option is left out.
            if len(self.errors) == mark or dataclasses.is_dataclass(converted):
                kwargs[key] = converted
        required = [name for name, f in fields.items() if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        for name in required:
            if name not in data:  # the option has no line: give the mapping's that lacks it
                line = self.lines.get(path) if self.lines and path else None
                where = f"line {line}: " if line else ""
                self.errors.append(f"{where}{join(path, name)}: required option is missing")
        if len(self.errors) > before and not (self.partial and set(required) <= set(kwargs)):
            return None
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            if len(self.errors) == before:  # else the defaults standing in may be the cause
                self.problem(path, str(exc))
            return None

    def check_range(self, f: dataclasses.Field, value: Any, path: str) -> None:
        """`opt(min=, max=)` bounds, on a number or on each number of a list."""
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if lo is None and hi is None:
            return
        items = enumerate(value) if isinstance(value, tuple) else [(None, value)]
        for i, v in items:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                continue
            if lo is not None and v < lo or hi is not None and v > hi:
                low = "-inf" if lo is None else lo
                high = "inf" if hi is None else hi
                here = path if i is None else join(path, i)
                self.problem(here, f"{v} is outside the allowed range {low}..{high}")

    def convert(self, tp: Any, value: Any, path: str) -> Any:
        """Check `value` against type `tp`; the converted value (or None after a problem)."""
        origin = typing.get_origin(tp)
        if tp is Any:
            return value
        if origin in (Union, types.UnionType):
            args = typing.get_args(tp)
            if value is None and type(None) in args:
                return None
            real = [a for a in args if a is not type(None)]
            for arg in real:
                trial = _Run([], None, False)
                out = trial.convert(arg, value, path)
                if not trial.errors:
                    return out
            # A mapping can only have meant the union's one dataclass: say what is wrong inside it.
            shaped = [a for a in real if dataclasses.is_dataclass(a)]
            if isinstance(value, dict) and len(shaped) == 1:
                return self.convert(shaped[0], value, path)
            self.problem(path, f"expected {_type_name(tp)}, got {_describe(value)}")
            return None
        if origin is Literal:
            allowed = typing.get_args(tp)
            if value in allowed:
                return value
            self.problem(path, f"must be one of {', '.join(map(repr, allowed))}, got {short(value)}"
                         + suggest(str(value), [str(a) for a in allowed]))
            return None
        if origin in (list, tuple):
            if not isinstance(value, (list, tuple)):
                self.problem(path, f"expected a list, got {_describe(value)}")
                return None
            args = typing.get_args(tp)
            if origin is tuple and args[-1] is not Ellipsis:  # fixed length, e.g. a [low, high]
                if len(value) != len(args):
                    self.problem(path, f"expected a {_type_name(tp)}, got a list of {len(value)}")
                    return None
                return tuple(self.convert(a, v, join(path, i))
                             for i, (a, v) in enumerate(zip(args, value, strict=True)))
            return tuple(self.convert(args[0], v, join(path, i)) for i, v in enumerate(value))
        if origin is dict:
            if not isinstance(value, dict):
                self.problem(path, f"expected a mapping, got {_describe(value)}")
                return None
            _, vt = typing.get_args(tp)
            return {str(k): self.convert(vt, v, join(path, str(k))) for k, v in value.items()}
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            return self.validate(tp, value, path)
        if tp is bool:
            if isinstance(value, bool):
                return value
        elif tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
        elif tp is float:
            if isinstance(value, str) and _EXPONENT.fullmatch(value.strip()):
                value = float(value)  # 1e-10: a number in YAML 1.2, a string to PyYAML
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                if not math.isfinite(value):
                    self.problem(path, f"must be a finite number, got {value!r}")
                    return None
                return float(value)
        elif tp is str:
            if isinstance(value, str):
                return value
            if isinstance(value, int) and not isinstance(value, bool) \
                    or isinstance(value, float) and math.isfinite(value):
                return str(value)
        else:
            raise TypeError(f"unsupported option type {tp!r} at {path}")
        self.problem(path, f"expected {_type_name(tp)}, got {_describe(value)}")
        return None


_EXPONENT = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")


def describe_options(cls: type) -> list[tuple[str, str, Any, str]]:
    """(name, type, default, help) for each option, for `edgevoice plugins --options`."""
    hints = typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else (
            f.default_factory() if f.default_factory is not dataclasses.MISSING else "required")
        rows.append((f.name, _type_name(hints[f.name]), default, f.metadata.get("help", "")))
    return rows


def opt(default: Any, help: str = "", min: float | None = None, max: float | None = None,
        ) -> Any:
    """A dataclass field with a help text and an optional range (on each item of a list of
    numbers); `opt(REQUIRED, ...)` has no default."""
    meta: dict[str, Any] = {"help": help}
    if min is not None:
        meta["min"] = min
    if max is not None:
        meta["max"] = max
    if default is REQUIRED:
        return dataclasses.field(metadata=meta)
    if isinstance(default, list):  # lists are validated into tuples: keep defaults alike
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=meta)
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
