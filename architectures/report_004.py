"""Report 004 ("DEEP LEARNING ASSIGNMENT", English): ten steps from a two-conv net to a
six-conv VGG-style net with BatchNorm, growing dropout, early stopping and augmentation.

Every convolution is 3×3, 'same' padding, ReLU; the output is Dense(10, softmax). Steps 7–10
share one architecture (``r004_step7``); they differ only in training, see benchmarks.toml.
"""

from __future__ import annotations

from architectures.common import INPUT_SHAPE
from architectures.common import sequential as _sequential
from architectures.registry import register


def _conv_pair(filters: int, *, batch_norm: bool, dropout: float | None) -> list:
    """Two 3×3 ReLU convolutions (each optionally followed by BatchNorm), 2×2 max-pool, dropout."""
    from keras import layers

    block: list = []
    for _ in range(2):
        block.append(layers.Conv2D(filters, (3, 3), activation="relu", padding="same"))
        if batch_norm:
            block.append(layers.BatchNormalization())
    block.append(layers.MaxPooling2D((2, 2)))
    if dropout:
        block.append(layers.Dropout(dropout))
    return block


@register()
def r004_step1(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Two 32-filter convs, max-pool, flatten, softmax (92,074 params)."""
    from keras import layers

    return _sequential(
        "r004_step1",
        input_shape,
        [
            *_conv_pair(32, batch_norm=False, dropout=None),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r004_step2(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Step 1 plus a second conv pair with 64 filters (106,538 params)."""
    from keras import layers

    return _sequential(
        "r004_step2",
        input_shape,
        [
            *_conv_pair(32, batch_norm=False, dropout=None),
            *_conv_pair(64, batch_norm=False, dropout=None),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r004_step3(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Step 2 with BatchNorm after every conv (107,306 params)."""
    from keras import layers

    return _sequential(
        "r004_step3",
        input_shape,
        [
            *_conv_pair(32, batch_norm=True, dropout=None),
            *_conv_pair(64, batch_norm=True, dropout=None),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r004_step4(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Step 3 with Dropout(0.2) after each pool (107,306 params; the report prints 187,386)."""
    from keras import layers

    return _sequential(
        "r004_step4",
        input_shape,
        [
            *_conv_pair(32, batch_norm=True, dropout=0.2),
            *_conv_pair(64, batch_norm=True, dropout=0.2),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r004_step5(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Step 4 plus a third BN conv pair with 64 filters (150,954 params)."""
    from keras import layers

    return _sequential(
        "r004_step5",
        input_shape,
        [
            *_conv_pair(32, batch_norm=True, dropout=0.2),
            *_conv_pair(64, batch_norm=True, dropout=0.2),
            *_conv_pair(64, batch_norm=True, dropout=0.2),
            layers.Flatten(),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r004_step6(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Third pair widened to 128 filters, Dense 128-64 head (559,978 params)."""
    from keras import layers

    return _sequential(
        "r004_step6",
        input_shape,
        [
            *_conv_pair(32, batch_norm=True, dropout=0.2),
            *_conv_pair(64, batch_norm=True, dropout=0.2),
            *_conv_pair(128, batch_norm=True, dropout=0.2),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r004_step7(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Step 6 with dropout growing 0.2/0.3/0.4 by block; the report's final model (559,978)."""
    from keras import layers

    return _sequential(
        "r004_step7",
        input_shape,
        [
            *_conv_pair(32, batch_norm=True, dropout=0.2),
            *_conv_pair(64, batch_norm=True, dropout=0.3),
            *_conv_pair(128, batch_norm=True, dropout=0.4),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(64, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )
