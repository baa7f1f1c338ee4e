"""YAML -> nested dataclasses, strict: unknown keys and wrong types fail with the key's path.

Each component owns a small dataclass (``GRPOConfig``, ``BeamConfig``...); recipes are YAML
files composing them. ``apply_overrides`` takes CLI items like ``train.lr=1e-5``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

T = TypeVar("T")


class ConfigError(ValueError):
    """Bad configuration; the message starts with the offending key path."""


def from_dict(cls: type[T], data: dict[str, Any] | None, path: str = "") -> T:
    """Build dataclass ``cls`` from a plain dict, checking keys and types recursively."""
    data = dict(data or {})
    if not isinstance(data, dict):
        raise ConfigError(f"{path or '<root>'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(
            f"{where}{unknown[0]}: unknown key; valid keys here: {', '.join(sorted(fields))}"
        )
    kwargs = {}
    for name, value in data.items():
        kwargs[name] = _coerce(hints[name], value, f"{path}.{name}" if path else name)
    obj = cls(**kwargs)
    check = getattr(obj, "check", None)
    if check is not None:  # ranges and registry names, checked when the config is loaded
        try:
            check()
        except ConfigError as exc:
            raise ConfigError(f"{path}.{exc}" if path else str(exc)) from None
    return obj


def require(ok: bool, key: str, message: str) -> None:
    """For ``check()`` methods: raise ConfigError("key: message") unless ``ok``."""
    if not ok:
        raise ConfigError(f"{key}: {message}")


def require_name(registry, name: str, key: str) -> None:
    """For ``check()`` methods: a registry name (or import path) must resolve now, not after the
    model has loaded and the first rollout has run."""
    from reasonlab.registry import RegistryError

    try:
        registry.get(name)
    except RegistryError as exc:
        raise ConfigError(f"{key}: {exc}") from None


def load_config(cls: type[T], config: str | Path | None, overrides: list[str] | None = None) -> T:
    """A recipe name (``r1_zero_arith``) or YAML path, plus ``key.path=value`` overrides, as
    dataclass ``cls``: the one way every trainer and recipe reads its configuration."""
    from reasonlab.recipes import config_path

    data = load_yaml(config_path(str(config))) if config else {}
    return from_dict(cls, apply_overrides(data, list(overrides or [])))


def _coerce(tp: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(arg, value, path)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{path}: bad value {value!r}")
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return from_dict(tp, value, path)
    if origin in (list, tuple):
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{path}: expected a list, got {value!r}")
        inner = args[0] if args else Any
        items = [_coerce(inner, v, f"{path}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        vt = args[1] if len(args) == 2 else Any
        return {k: _coerce(vt, v, f"{path}.{k}") for k, v in value.items()}
    if origin is typing.Literal:
        if value not in args:
            raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{path}: expected true/false, got {value!r}")
    if tp in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
        if isinstance(value, (int, float)) and (tp is float or float(value).is_integer()):
            return tp(value)
        if isinstance(value, str):
            try:
                return tp(float(value)) if tp is float else int(value)
            except ValueError:
                pass
        raise ConfigError(f"{path}: expected {tp.__name__}, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    return value


def parse_override(item: str) -> tuple[list[str], Any]:
    """``"train.lr=1e-5"`` -> (["train", "lr"], 1e-5) using YAML scalars for the value."""
    if "=" not in item:
        raise ConfigError(f"{item}: override must look like key.path=value")
    key, _, raw = item.partition("=")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    data = dict(data)
    for item in overrides:
        keys, value = parse_override(item)
        node = data
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(keys)}: {k} is not a mapping")
        node[keys[-1]] = value
    return data


def load_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping")
    return data


def to_dict(cfg: Any) -> Any:
    if dataclasses.is_dataclass(cfg):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(v) for v in cfg]
    if isinstance(cfg, dict):
        return {k: to_dict(v) for k, v in cfg.items()}
    return cfg


def dump_yaml(cfg: Any, path: str | Path) -> None:
    from reasonlab.io import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(to_dict(cfg), sort_keys=False))
