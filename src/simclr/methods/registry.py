"""Pretraining methods by name: ``--method NAME`` (``model.method`` in a config file).

A method is a ``simclr.methods.base.PretrainMethod`` subclass with a ``name``, made known with
``@register``. The engine looks it up here and nowhere else, so a method defined outside the package
(a user's module, a test file) trains through the same loop, checkpoints and monitors once registered::

    from simclr.methods import PretrainMethod, register

    @register
    class MyMethod(PretrainMethod):
        name = "mine"
        ...

    pretrain(cfg_with_model_method_mine, "runs/mine")
"""

from __future__ import annotations

from simclr.errors import SimCLRError, suggest
from simclr.methods.base import PretrainMethod

METHODS: dict[str, type[PretrainMethod]] = {}


def register(cls: type[PretrainMethod]) -> type[PretrainMethod]:
    """Make ``cls`` known by its ``name`` (a class decorator); a name taken by another class is refused."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name: set the class attribute name = '...'")
    if cls.name in METHODS and METHODS[cls.name] is not cls:
        raise ValueError(f"method {cls.name!r} is already registered by {METHODS[cls.name].__qualname__}")
    METHODS[cls.name] = cls
    return cls


def method_class(name: str) -> type[PretrainMethod]:
    """The method registered as ``name``; an unknown name is one line with the known ones."""
    if name not in METHODS:
        known = ", ".join(sorted(METHODS))
        raise SimCLRError(f"unknown --method {name!r}{suggest(name, list(METHODS))}; known: {known}")
    return METHODS[name]


__all__ = ["METHODS", "method_class", "register"]
