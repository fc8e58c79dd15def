"""Where a configuration comes from: presets, YAML files and command-line overrides, type-checked.

Precedence, lowest first: built-in defaults < per-dataset defaults (PAPER.md) < ``--preset`` <
``--config FILE.yaml`` < command-line flags. Every value is checked against its field's type, and a
misspelt section or key gets a "did you mean".
"""

from __future__ import annotations

import math
import typing
from dataclasses import fields
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from simclr.config.schema import sections
from simclr.errors import SimCLRError, suggest


def apply_overrides(cfg: Any, overrides: dict[str, Any], source: str) -> None:
    """Set ``section.key`` values of ``cfg`` (a ``PretrainConfig`` or another config made of sections)
    from a nested dict (YAML) or from ``{"section.key": v}``."""
    flat: dict[str, Any] = {}
    for k, v in overrides.items():
        if isinstance(v, dict) and "." not in k:  # a section (``section.key`` values may be mappings themselves)
            for kk, vv in v.items():
                flat[f"{k}.{kk}"] = vv
        else:
            flat[k] = v
    known = sections(type(cfg))
    for key, value in flat.items():
        if "." not in key:
            raise SimCLRError(f"{source}: {key!r} must sit under a section: {', '.join(known)}")
        sec_name, name = key.split(".", 1)
        if sec_name not in known:
            raise SimCLRError(f"{source}: unknown section {sec_name!r}{suggest(sec_name, list(known))}")
        section = getattr(cfg, sec_name)
        names = [f.name for f in fields(section)]
        if name not in names:
            raise SimCLRError(f"{source}: unknown key {key!r}{suggest(name, names)}")
        hint = typing.get_type_hints(type(section))[name]
        setattr(section, name, typed_value(value, hint, key, source))


def typed_value(value: Any, hint: Any, key: str, source: str) -> Any:
    """``value`` checked against the field's type (ints accepted for floats, lists for tuples)."""
    args = typing.get_args(hint)
    optional = type(None) in args
    if optional:
        if value is None:
            return None
        hint = next(a for a in args if a is not type(None))
    what = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
    bad = SimCLRError(f"{source}: {key} must be {what.get(hint, 'a pair of numbers')}, got {value!r}")
    if value is None:
        raise bad
    if typing.get_origin(hint) is tuple and typing.get_args(hint) == (str, ...):
        if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
            raise SimCLRError(f"{source}: {key} must be a list of names, got {value!r}")
        return tuple(value)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(typing.get_args(hint)):
            raise bad
        return tuple(typed_value(v, float, key, source) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise bad
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        if not math.isfinite(value):
            raise SimCLRError(f"{source}: {key} must be a finite number, got {value!r}")
        return float(value)
    if hint is str and not isinstance(value, str):
        raise bad
    return value


def load_yaml(path: str | Path) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as e:
        raise SimCLRError(f"cannot read config {path}: {e.strerror}") from e
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark is not None else str(path)
        what = getattr(e, "problem", None) or str(e).splitlines()[0]
        raise SimCLRError(f"{where}: not valid YAML: {what}") from e
    if not isinstance(data, dict):
        raise SimCLRError(f"{path} must hold a mapping of sections (data, model, ...)")
    return data


def preset_names() -> list[str]:
    folder = resources.files("simclr") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_preset(name: str) -> dict[str, Any]:
    names = preset_names()
    if name not in names:
        raise SimCLRError(f"unknown preset {name!r}{suggest(name, names)}: choose one of {', '.join(names)}")
    data = yaml.safe_load((resources.files("simclr") / "presets" / f"{name}.yaml").read_text())
    data.pop("reported", None)  # documentation: the figure the paper reports for this recipe
    data.pop("notes", None)  # documentation: what the recipe needs (memory)
    return data


__all__ = ["apply_overrides", "load_preset", "load_yaml", "preset_names", "suggest", "typed_value"]
