"""Report 001 ("Deep Learning - CNN / CONVUTIONAL NEURAL NETWORK", Spanish): twelve steps,
Proyecto_0 to Proyecto 11, from one 32-filter conv to a five-block BatchNorm/dropout net
trained with data augmentation.

Every convolution is 3×3, stride 1, 'same' padding, ReLU; every pool is a 2×2 max-pool; hidden
Dense layers are ReLU; the output is Dense(10, softmax). Proyecto_2, _3, _5 and _6 have no
printed summary and are built from the prose; Proyecto_7, _9 and _10 only from their code
listings. Every such decision is in the recipe's notes in benchmarks.toml.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import INPUT_SHAPE
from architectures.common import sequential as _sequential
from architectures.registry import register

if TYPE_CHECKING:
    import keras


def _conv(filters: int):
    from keras import layers

    return layers.Conv2D(filters, (3, 3), strides=1, activation="relu", padding="same")


def _conv_block(filters: int, *, batch_norm: str | None = None, dropout: float | None = None) -> list:
    """One 3×3 ReLU conv, 2×2 max-pool, optional dropout. ``batch_norm`` places a BatchNorm
    after the conv ("conv", Proyecto_8 on) or after the pool ("pool", Proyecto_7), or none."""
    from keras import layers

    block: list = [_conv(filters)]
    if batch_norm == "conv":
        block.append(layers.BatchNormalization())
    block.append(layers.MaxPooling2D((2, 2)))
    if batch_norm == "pool":
        block.append(layers.BatchNormalization())
    if dropout:
        block.append(layers.Dropout(dropout))
    return block


def _dense_bn(units: int, dropout: float | None) -> list:
    """Dense ReLU, BatchNorm, optional dropout (the classifier head from Proyecto_7 on)."""
    from keras import layers

    block: list = [layers.Dense(units, activation="relu"), layers.BatchNormalization()]
    if dropout:
        block.append(layers.Dropout(dropout))
    return block


@register()
def r001_proyecto_0(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """One 32-filter conv, max-pool, Dense 32, softmax (263,402 params)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_0",
        input_shape,
        [
            *_conv_block(32),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_1(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto_0 plus a 16-filter conv after the pool, as printed (136,954 params)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_1",
        input_shape,
        [
            *_conv_block(32),
            _conv(16),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_2(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Second conv widened to 100 filters; no summary printed (849,358 params)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_2",
        input_shape,
        [
            *_conv_block(32),
            _conv(100),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_3(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """A third conv of 100 filters, no pool after it; no summary printed (939,458 params)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_3",
        input_shape,
        [
            *_conv_block(32),
            _conv(100),
            _conv(100),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_4(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto_3 with a max-pool after the third conv (325,058 params)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_4",
        input_shape,
        [
            *_conv_block(32),
            _conv(100),
            *_conv_block(100),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_5(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Pool after every conv, Dropout 0.2 after the first two blocks; no summary (171,458)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_5",
        input_shape,
        [
            *_conv_block(32, dropout=0.2),
            *_conv_block(100, dropout=0.2),
            *_conv_block(100),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_6(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Conv blocks 32/64/128 with Dropout 0.2, Dense 256-256 with Dropout 0.2; no summary (686,154)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_6",
        input_shape,
        [
            *_conv_block(32, dropout=0.2),
            *_conv_block(64, dropout=0.2),
            *_conv_block(128, dropout=0.2),
            layers.Flatten(),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(256, activation="relu"),
            layers.Dropout(0.2),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_7(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """BatchNorm after pool 1 and both Dense 256, Dropout 0.3 on blocks 1-2; code only (688,330)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_7",
        input_shape,
        [
            *_conv_block(32, batch_norm="pool", dropout=0.3),
            *_conv_block(64, dropout=0.3),
            *_conv_block(128),
            layers.Flatten(),
            *_dense_bn(256, 0.2),
            *_dense_bn(256, 0.2),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


def _four_bn_blocks(name: str, input_shape, num_classes: int, conv_dropouts: tuple[float, ...]) -> keras.Model:
    """Proyecto_8-10: conv-BN-pool-dropout blocks 32/64/128/256, Dense 256-BN x2 (dropout 0.2, 0.1)."""
    from keras import layers

    blocks = [
        layer
        for filters, rate in zip((32, 64, 128, 256), conv_dropouts, strict=True)
        for layer in _conv_block(filters, batch_norm="conv", dropout=rate)
    ]
    return _sequential(
        name,
        input_shape,
        [
            *blocks,
            layers.Flatten(),
            *_dense_bn(256, 0.2),
            *_dense_bn(256, 0.1),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r001_proyecto_8(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """BN after each conv, fourth block of 256, Dropout 0.3 per block, head dropout 0.2/0.1 (723,146)."""
    return _four_bn_blocks("r001_proyecto_8", input_shape, num_classes, (0.3, 0.3, 0.3, 0.3))


@register()
def r001_proyecto_9(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto_8 with Dropout 0.4 after the 128-filter block; code only (723,146 params)."""
    return _four_bn_blocks("r001_proyecto_9", input_shape, num_classes, (0.3, 0.3, 0.4, 0.3))


@register()
def r001_proyecto_10(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto_8 with Dropout 0.2 after every conv block; code only (723,146 params)."""
    return _four_bn_blocks("r001_proyecto_10", input_shape, num_classes, (0.2, 0.2, 0.2, 0.2))


@register()
def r001_proyecto_11(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Conv pairs 32/64, convs 128/128/256 (BN only after 256), Dropout 0.3; as printed (719,402)."""
    from keras import layers

    return _sequential(
        "r001_proyecto_11",
        input_shape,
        [
            _conv(32),
            *_conv_block(32, dropout=0.3),
            _conv(64),
            *_conv_block(64, dropout=0.3),
            *_conv_block(128, dropout=0.3),
            *_conv_block(128, dropout=0.3),
            *_conv_block(256, batch_norm="conv", dropout=0.3),
            layers.Flatten(),
            *_dense_bn(256, 0.2),
            *_dense_bn(256, 0.1),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )
