"""Typed config from plain YAML data: frozen dataclasses, checked field by field.

Every section of the pipeline config is a frozen dataclass whose fields carry a docstring and
their allowed range in `metadata` (see `option`). `build(cls, data, path)` turns a dict into that
dataclass and raises `ConfigError` naming the key path the user typed, the value, and what is
allowed. Nothing here knows about Ray or torch.
"""
from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal, Union

SCIENTIFIC = re.compile(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+")  # 1e-3, 2E5: numbers YAML 1.1 calls strings

class ConfigError(ValueError):
    """A config value that cannot be used; the message names the key path."""


def option(default: Any = dataclasses.MISSING, doc: str = "", *, ge: float | None = None,
           gt: float | None = None, le: float | None = None, lt: float | None = None,
           default_factory: Any = dataclasses.MISSING) -> Any:
    """A dataclass field with a docstring and an allowed numeric range."""
    meta = {"doc": doc, "ge": ge, "gt": gt, "le": le, "lt": lt}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def _describe(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(tp))
    if origin in (list, tuple):
        return "a list"
    if origin is dict:
        return "a mapping"
    if dataclasses.is_dataclass(tp):
        return "a mapping"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


def _fail(path: str, value: Any, allowed: str) -> ConfigError:
    return ConfigError(f"{path}: got {value!r}; allowed: {allowed}")


def convert(tp: Any, value: Any, path: str) -> Any:
    """Check `value` against the type `tp` and return it in that type (lists become tuples)."""
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if dataclasses.is_dataclass(tp):
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _fail(path, value, "a mapping")
        return build(tp, value, path)
    if origin is Literal:
        if value not in typing.get_args(tp):
            raise _fail(path, value, _describe(tp))
        return value
    if origin in (Union, types.UnionType):
        if float in typing.get_args(tp) and isinstance(value, float) and not math.isfinite(value):
            raise _fail(path, value, "a finite number")
        errors = []
        for arg in typing.get_args(tp):
            try:
                return convert(arg, value, path)
            except ConfigError as err:
                errors.append(err)
        raise _fail(path, value, _describe(tp))
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise _fail(path, value, "a list")
        args = typing.get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, value, "a mapping")
        key_tp, val_tp = typing.get_args(tp) or (Any, Any)
        return {convert(key_tp, k, path): convert(val_tp, v, f"{path}.{k}") for k, v in value.items()}
    if tp is type(None):
        if value is not None:
            raise _fail(path, value, "null")
        return None
    if tp is bool:
        if not isinstance(value, bool):
            raise _fail(path, value, "true or false")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, value, "an integer")
        return value
    if tp is float:
        if isinstance(value, str) and SCIENTIFIC.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads `1e-3` (no dot) as a string; a user means 0.001
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, value, "a number")
        if not math.isfinite(value):  # YAML's .inf/.nan pass every range check: refuse them here
            raise _fail(path, value, "a finite number")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise _fail(path, value, "a string")
        return value
    raise TypeError(f"unsupported config type {tp!r} at {path}")


def _check_range(f: dataclasses.Field, value: Any, path: str) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    m = f.metadata
    bounds = [("ge", lambda v, b: v >= b, ">="), ("gt", lambda v, b: v > b, ">"),
              ("le", lambda v, b: v <= b, "<="), ("lt", lambda v, b: v < b, "<")]
    for key, ok, sign in bounds:
        bound = m.get(key)
        if bound is not None and not ok(value, bound):
            limits = [f"{s} {m[k]}" for k, _, s in bounds if m.get(k) is not None]
            raise _fail(path, value, "a number " + " and ".join(limits))


def build(cls: type, data: dict, path: str = "") -> Any:
    """Build the frozen dataclass `cls` from `data`, rejecting unknown keys and bad values."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in data:
        if key not in fields:
            where = f"{path}.{key}" if path else str(key)
            raise ConfigError(f"{where}: unknown key; allowed keys: {', '.join(sorted(fields))}")
    kwargs = {}
    for name, f in fields.items():
        where = f"{path}.{name}" if path else name
        if name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: missing required key")
            continue
        value = convert(hints[name], data[name], where)
        _check_range(f, value, where)
        kwargs[name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if callable(check):
        check(path)
    return obj


def to_dict(obj: Any) -> Any:
    """The plain-data form of a config (tuples become lists), suitable for YAML or JSON."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj
