"""What every builder shares: the CIFAR-10 input shape and the Sequential wrapper."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import keras

INPUT_SHAPE = (32, 32, 3)


def sequential(name: str, input_shape: tuple[int, int, int], body: list) -> keras.Model:
    """``keras.Sequential`` of an Input of ``input_shape`` and ``body``, named ``name``."""
    import keras

    return keras.Sequential([keras.Input(shape=input_shape), *body], name=name)
