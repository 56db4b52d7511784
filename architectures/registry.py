"""The architecture registry: a name → builder mapping, filled by importing the package.

Builders are pure functions that return an uncompiled ``keras.Model`` for 32×32×3 input and a
10-way softmax. They import Keras inside their body so that listing names (``bench list``)
never loads a deep-learning backend.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_]*$")

Builder = Callable[..., "keras.Model"]


class UnknownArchitecture(KeyError):
    """No builder is registered under the name asked for; the message names the closest ones."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


@dataclass(frozen=True)
class Architecture:
    """A registered builder and what a reader needs to know about it."""

    name: str
    builder: Builder
    summary: str
    module: str
    backbone: str | None = None  # a Keras application whose ImageNet weights the builder loads

    def build(self, **kwargs: Any) -> keras.Model:
        """Build a fresh, uncompiled model."""
        return self.builder(**kwargs)


_REGISTRY: dict[str, Architecture] = {}


def register(name: str | None = None, *, backbone: str | None = None) -> Callable[[Builder], Builder]:
    """Decorator that registers a builder under ``name`` (default: the function's name).

    The first line of the builder's docstring becomes its summary. A name that is already
    registered raises ``ValueError``: two builders must never silently share a name.
    ``backbone`` names the pretrained Keras application a transfer builder wraps (a key of
    ``harness.run.weights.BACKBONES``); such a builder takes ``weights`` (a verified weights file,
    or None for random initialisation, which only tests and ``--random-weights`` ask for).
    """

    def decorate(builder: Builder) -> Builder:
        key = name or builder.__name__
        if not NAME_PATTERN.match(key):
            raise ValueError(f"Architecture names are lower-case letters, digits and '_'. Received: name={key!r}")
        if key in _REGISTRY:
            raise ValueError(f"An entry is already registered under the name '{key}'.")
        doc = (builder.__doc__ or "").strip().splitlines()
        _REGISTRY[key] = Architecture(
            name=key, builder=builder, summary=doc[0] if doc else "", module=builder.__module__, backbone=backbone
        )
        return builder

    return decorate


def names() -> list[str]:
    """All registered architecture names, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> Architecture:
    """The architecture registered under ``name``; ``UnknownArchitecture`` naming the closest ones if none."""
    try:
        return _REGISTRY[name]
    except KeyError:
        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownArchitecture(f"No architecture named {name!r}.{hint}") from None


def build(name: str, **kwargs: Any) -> keras.Model:
    """Build the architecture registered under ``name``."""
    return get(name).build(**kwargs)
