"""Typed options: validate a YAML mapping into a frozen dataclass, collecting every error.

Each component declares an `Options` frozen dataclass. Field types drive validation (bool, int,
float, str, Literal, Optional, list, dict, nested dataclasses); `field(metadata=...)` adds
`min`/`max` bounds and `help`. Unknown keys are errors with a "did you mean".
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import reprlib
import types
import typing
from typing import Any, Literal, TypeVar, Union

T = TypeVar("T")


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


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "null"
    if origin in (list, tuple):
        return f"list of {_type_name(typing.get_args(tp)[0])}"
    if origin is dict:
        return "mapping"
    return getattr(tp, "__name__", str(tp))


def _convert(tp: Any, value: Any, path: str, errors: list[str]) -> Any:
    """Check `value` against type `tp`; returns the converted value (or None after an error)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        tried: dict[Any, list[str]] = {}
        for arg in args:
            if arg is type(None):
                continue
            trial: list[str] = []
            out = _convert(arg, value, path, trial)
            if not trial:
                return out
            tried[arg] = trial
        # A mapping can only have meant the union's one dataclass: say what is wrong inside it.
        shaped = [a for a in tried if dataclasses.is_dataclass(a)]
        if isinstance(value, dict) and len(shaped) == 1:
            errors.extend(tried[shaped[0]])
            return None
        errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
        return None
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value in allowed:
            return value
        errors.append(f"{path}: must be one of {', '.join(map(repr, allowed))}, got {short(value)}"
                      + suggest(str(value), [str(a) for a in allowed]))
        return None
    if origin in (list, tuple):
        if not isinstance(value, list):
            errors.append(f"{path}: expected a list, got {_describe(value)}")
            return None
        (item,) = typing.get_args(tp)[:1]
        return tuple(_convert(item, v, join(path, i), errors) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            errors.append(f"{path}: expected a mapping, got {_describe(value)}")
            return None
        _, vt = typing.get_args(tp)
        return {str(k): _convert(vt, v, join(path, str(k)), errors) for k, v in value.items()}
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return validate(tp, value, path, errors)
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if not math.isfinite(value):
                errors.append(f"{path}: must be a finite number, got {value!r}")
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
    errors.append(f"{path}: expected {_type_name(tp)}, got {_describe(value)}")
    return None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return f"{type(value).__name__} {short(value)}"


def validate(cls: type[T], data: Any, path: str, errors: list[str],
             ignore: tuple[str, ...] = ()) -> T | None:
    """Build dataclass `cls` from mapping `data`; append 'path: problem' strings to `errors`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(f"{path or 'top level'}: expected a mapping, got {_describe(data)}")
        return None
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}  # type: ignore[arg-type]
    before = len(errors)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in ignore:
            continue
        if key not in fields:
            errors.append(f"{join(path, str(key))}: unknown option{suggest(str(key), fields)}")
            continue
        f = fields[key]
        here = join(path, key)
        converted = _convert(hints[key], value, here, errors)
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        if isinstance(converted, (int, float)) and not isinstance(converted, bool):
            if lo is not None and converted < lo or hi is not None and converted > hi:
                low = "-inf" if lo is None else lo
                high = "inf" if hi is None else hi
                errors.append(f"{here}: {converted} is outside the allowed range {low}..{high}")
        kwargs[key] = converted
    for name, f in fields.items():
        missing = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        if missing and name not in data:
            errors.append(f"{join(path, name)}: required option is missing")
    if len(errors) > before:
        return None
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        errors.append(f"{path or 'top level'}: {exc}")
        return None


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
    """A dataclass field with a help text and an optional range."""
    meta: dict[str, Any] = {"help": help}
    if min is not None:
        meta["min"] = min
    if max is not None:
        meta["max"] = max
    if isinstance(default, list):  # lists are validated into tuples: keep defaults alike
        return dataclasses.field(default_factory=lambda: tuple(default), metadata=meta)
    if isinstance(default, dict):
        return dataclasses.field(default_factory=lambda: dict(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)
