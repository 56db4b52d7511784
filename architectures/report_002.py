"""Report 002 ("PROYECTO CIFAR 10", Spanish): nine CNNs, "PROYECTO 1" to "PROYECTO 9", from a
two-conv net to a VGG-style net of three conv pairs, each block closed by max-pool, Dropout
and BatchNorm (in that order), with a Dense 512 head. PROYECTO 10 (VGG16 transfer learning)
is out of scope.

Every convolution is 3×3, stride 1, 'same' padding, ReLU, Keras' default initializer; pooling
is 2×2 max; the output is Dense(10, softmax). Only PROYECTO 1, 2, 3 and 7 print a total; the
others follow the code. PROYECTO 8 reuses ``r002_proyecto_7`` and PROYECTO 9 reuses
``r002_proyecto_6`` (same layers, see the recipes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import INPUT_SHAPE, sequential
from architectures.registry import register

if TYPE_CHECKING:
    import keras


def _conv_block(filters: int, *, convs: int = 2, dropout: float | None = None, batch_norm: bool = False) -> list:
    """``convs`` 3×3 'same' ReLU convolutions, 2×2 max-pool, then optional Dropout, then optional BatchNorm."""
    from keras import layers

    block: list = [layers.Conv2D(filters, (3, 3), strides=1, activation="relu", padding="same") for _ in range(convs)]
    block.append(layers.MaxPooling2D((2, 2)))
    if dropout:
        block.append(layers.Dropout(dropout))
    if batch_norm:
        block.append(layers.BatchNormalization())
    return block


def _dense(units: int, *, dropout: float | None = None, batch_norm: bool = False) -> list:
    """A ReLU Dense layer, then optional Dropout, then optional BatchNorm."""
    from keras import layers

    block: list = [layers.Dense(units, activation="relu")]
    if dropout:
        block.append(layers.Dropout(dropout))
    if batch_norm:
        block.append(layers.BatchNormalization())
    return block


def _sequential(name: str, input_shape: tuple[int, int, int], body: list, num_classes: int) -> keras.Model:
    """Input, the body, and the Dense(num_classes, softmax) output every model of the report ends with."""
    from keras import layers

    return sequential(name, input_shape, [*body, layers.Dense(num_classes, activation="softmax")])


def _vgg_bn(
    name: str,
    widths: tuple[int, int, int],
    *,
    dense: int,
    dropout: float,
    input_shape: tuple[int, int, int],
    num_classes: int,
) -> keras.Model:
    """PROYECTO 4-9: three conv pairs and one Dense layer, each followed by Dropout then BatchNorm."""
    from keras import layers

    body: list = []
    for width in widths:
        body += _conv_block(width, dropout=dropout, batch_norm=True)
    body += [layers.Flatten(), *_dense(dense, dropout=dropout, batch_norm=True)]
    return _sequential(name, input_shape, body, num_classes)


@register()
def r002_proyecto_1(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """conv32-pool-conv64-pool, Dense 64, softmax (282,250 params)."""
    from keras import layers

    return _sequential(
        "r002_proyecto_1",
        input_shape,
        [
            *_conv_block(32, convs=1),
            *_conv_block(64, convs=1),
            layers.Flatten(),
            *_dense(64),
        ],
        num_classes,
    )


@register()
def r002_proyecto_2(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Conv pairs 32 / 64 / 128, each pair max-pooled, Dense 128 (550,570 params)."""
    from keras import layers

    return _sequential(
        "r002_proyecto_2",
        input_shape,
        [
            *_conv_block(32),
            *_conv_block(64),
            *_conv_block(128),
            layers.Flatten(),
            *_dense(128),
        ],
        num_classes,
    )


@register()
def r002_proyecto_3(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto 2 with Dropout(0.3) after every pool and a Dense 128-128 head with Dropout(0.3) (567,082 params)."""
    from keras import layers

    return _sequential(
        "r002_proyecto_3",
        input_shape,
        [
            *_conv_block(32, dropout=0.3),
            *_conv_block(64, dropout=0.3),
            *_conv_block(128, dropout=0.3),
            layers.Flatten(),
            *_dense(128, dropout=0.3),
            *_dense(128, dropout=0.3),
        ],
        num_classes,
    )


@register()
def r002_proyecto_4(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Conv pairs 32 / 64 / 128 and one Dense 128, each followed by Dropout(0.3) then BatchNorm (551,978 params)."""
    return _vgg_bn(
        "r002_proyecto_4", (32, 64, 128), dense=128, dropout=0.3, input_shape=input_shape, num_classes=num_classes
    )


@register()
def r002_proyecto_5(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto 4 with the Dense layer widened to 256 (816,042 params)."""
    return _vgg_bn(
        "r002_proyecto_5", (32, 64, 128), dense=256, dropout=0.3, input_shape=input_shape, num_classes=num_classes
    )


@register()
def r002_proyecto_6(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Conv pairs widened to 64 / 128 / 256, Dense 512, Dropout(0.3) + BatchNorm (3,252,042 params)."""
    # The report's code cell for PROYECTO 6 stops after the BatchNorm that follows Dense 512; the
    # Dense(10, softmax) output is added (PROYECTO 9 writes these same layers with it).
    return _vgg_bn(
        "r002_proyecto_6", (64, 128, 256), dense=512, dropout=0.3, input_shape=input_shape, num_classes=num_classes
    )


@register()
def r002_proyecto_7(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Conv pairs 128 / 256 / 512, Dense 512, Dropout(0.5) + BatchNorm (8,781,962 params)."""
    return _vgg_bn(
        "r002_proyecto_7", (128, 256, 512), dense=512, dropout=0.5, input_shape=input_shape, num_classes=num_classes
    )
