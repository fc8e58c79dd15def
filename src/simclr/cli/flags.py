"""Command-line flags derived from the config dataclasses: one flag per field, its help beside the field.

A field ``section.name`` becomes ``--name-with-dashes`` (or the field's own ``flag``), typed from its
annotation: booleans get a ``--x / --no-x`` pair, numbers and strings a value; tuples and fields marked
``cli=False`` are YAML keys only. Every flag defaults to "not given", so only the flags a user typed
override the preset and the config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from simclr.config import PretrainConfig, sections


@dataclass(frozen=True)
class Flag:
    flag: str
    key: str  # "section.field"
    type: Any  # None for a boolean switch pair
    help: str

    @property
    def dest(self) -> str:
        return self.key.replace(".", "__")


def config_flags(config_type: type = PretrainConfig) -> list[Flag]:
    """The flags of every command-line field of a config's sections, in declaration order."""
    out = []
    for section_name, section_type in sections(config_type).items():
        hints = typing.get_type_hints(section_type)
        for f in dataclasses.fields(section_type):
            meta = f.metadata
            if not meta.get("cli", True):
                continue
            hint = hints[f.name]
            args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
            base = args[0]
            if typing.get_origin(base) is tuple:
                continue
            flag = meta.get("flag") or "--" + f.name.replace("_", "-")
            out.append(Flag(flag, f"{section_name}.{f.name}", None if base is bool else base, meta.get("help", "")))
    return out


def add_config_flags(parser: argparse.ArgumentParser, flags: list[Flag], helps: dict[str, str] | None = None) -> None:
    """One flag per ``Flag``; ``helps`` replaces the help of some (by ``section.field``), where a command's
    default is not the config field's (finetune's dataset is the run's own)."""
    helps = helps or {}
    for fl in flags:
        fl = Flag(fl.flag, fl.key, fl.type, helps.get(fl.key, fl.help))  # noqa: PLW2901
        if fl.type is None:
            parser.add_argument(fl.flag, dest=fl.dest, action=argparse.BooleanOptionalAction, default=None,
                                help=fl.help)
        else:
            parser.add_argument(fl.flag, dest=fl.dest, type=fl.type, default=None, help=fl.help,
                                metavar=fl.key.split(".")[1].upper())


def given_overrides(args: argparse.Namespace, flags: list[Flag]) -> dict[str, Any]:
    """``{"section.field": value}`` for the flags the user gave."""
    return {fl.key: getattr(args, fl.dest) for fl in flags if getattr(args, fl.dest) is not None}


__all__ = ["Flag", "add_config_flags", "config_flags", "given_overrides"]
