"""Report 000 ("DEEP LEARNING AND AI PROYECTO IV", Spanish): ten steps, "proyecto 0" to
"proyecto 9", from a two-conv baseline to a six-conv VGG-style net with BatchNorm after every
conv, dropout after every block and a Dense 256-128-64 head.

Every convolution is 3×3, stride 1, 'same' padding, ReLU; pooling is 2×2 max; the output is
Dense(10, softmax). Initializers follow the report's code layer by layer: ``he_uniform``
where it writes it, Keras' default (Glorot uniform) elsewhere. Where the code and the printed
summary disagree (proyecto 1, 4, 6 and 9), the summary is built. Proyecto 7 reuses
``r000_proyecto_6`` (it changes only training, see the recipes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import INPUT_SHAPE
from architectures.common import sequential as _sequential
from architectures.registry import register

if TYPE_CHECKING:
    import keras


def _conv(filters: int, *, he: bool) -> keras.layers.Layer:
    """One 3×3, stride-1, 'same', ReLU convolution; ``he`` selects the he_uniform initializer."""
    from keras import layers

    initializer = "he_uniform" if he else "glorot_uniform"
    return layers.Conv2D(filters, (3, 3), strides=1, activation="relu", padding="same", kernel_initializer=initializer)


def _bn_block(filters: tuple[int, ...], *, dropout: float | None) -> list:
    """he_uniform convs, each followed by BatchNorm, then 2×2 max-pool and optional dropout."""
    from keras import layers

    block: list = []
    for width in filters:
        block += [_conv(width, he=True), layers.BatchNormalization()]
    block.append(layers.MaxPooling2D((2, 2)))
    if dropout:
        block.append(layers.Dropout(dropout))
    return block


def _dense_head(units: tuple[int, ...], dropouts: tuple[float, ...], num_classes: int) -> list:
    """Flatten, he_uniform ReLU Dense layers each followed by its dropout, softmax output."""
    from keras import layers

    head: list = [layers.Flatten()]
    for width, rate in zip(units, dropouts, strict=True):
        head += [layers.Dense(width, activation="relu", kernel_initializer="he_uniform"), layers.Dropout(rate)]
    head.append(layers.Dense(num_classes, activation="softmax"))
    return head


@register()
def r000_proyecto_0(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Baseline: conv32-pool-conv32-pool, Dense 32, softmax (76,042 params)."""
    from keras import layers

    return _sequential(
        "r000_proyecto_0",
        input_shape,
        [
            _conv(32, he=False),
            layers.MaxPooling2D((2, 2)),
            _conv(32, he=False),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r000_proyecto_1(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Four 32-filter convs (2+1+1) with three max-pools, Dense 32, as printed (45,386 params)."""
    from keras import layers

    # The code cell shows conv, conv, pool, conv, conv, conv, pool; the printed summary (what
    # ran) shows conv, conv, pool, conv, pool, conv, pool. The summary is built.
    return _sequential(
        "r000_proyecto_1",
        input_shape,
        [
            _conv(32, he=True),
            _conv(32, he=True),
            layers.MaxPooling2D((2, 2)),
            _conv(32, he=False),
            layers.MaxPooling2D((2, 2)),
            _conv(32, he=False),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(32, activation="relu"),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r000_proyecto_2(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Convs 16,16 / 32,32 / 64 / 128 with four pools, Dense 64-32, dropout 0.3 (144,250 params)."""
    from keras import layers

    return _sequential(
        "r000_proyecto_2",
        input_shape,
        [
            _conv(16, he=True),
            _conv(16, he=True),
            layers.MaxPooling2D((2, 2)),
            _conv(32, he=True),
            _conv(32, he=True),
            layers.MaxPooling2D((2, 2)),
            _conv(64, he=False),
            layers.MaxPooling2D((2, 2)),
            _conv(128, he=False),
            layers.MaxPooling2D((2, 2)),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(32, activation="relu"),
            layers.Dropout(0.3),
            layers.Dense(num_classes, activation="softmax"),
        ],
    )


@register()
def r000_proyecto_3(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """VGG-style conv pairs 32/64/128/256, Dense 128×3 with dropout 0.2 (1,337,770 params)."""
    from keras import layers

    body: list = []
    for width in (32, 64, 128, 256):
        body += [_conv(width, he=True), _conv(width, he=True), layers.MaxPooling2D((2, 2))]
    return _sequential(
        "r000_proyecto_3", input_shape, [*body, *_dense_head((128, 128, 128), (0.2, 0.2, 0.2), num_classes)]
    )


@register()
def r000_proyecto_4(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """BatchNorm after every conv, pairs 32/64/(192,256), Dense 128-64 (1,154,858 params)."""
    # The code cell has BatchNorm after only four of the six convs; the printed summary shows
    # one after every conv (six). The summary is built.
    return _sequential(
        "r000_proyecto_4",
        input_shape,
        [
            *_bn_block((32, 32), dropout=None),
            *_bn_block((64, 64), dropout=None),
            *_bn_block((192, 256), dropout=None),
            *_dense_head((128, 64), (0.3, 0.2), num_classes),
        ],
    )


@register()
def r000_proyecto_5(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Seven BN convs 32,32 / 64,128 / 192,224,256, Dense 216-128-64 (2,152,866 params)."""
    return _sequential(
        "r000_proyecto_5",
        input_shape,
        [
            *_bn_block((32, 32), dropout=None),
            *_bn_block((64, 128), dropout=None),
            *_bn_block((192, 224, 256), dropout=None),
            *_dense_head((216, 128, 64), (0.3, 0.2, 0.2), num_classes),
        ],
    )


@register()
def r000_proyecto_6(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """BN convs 64,64 / 128,128 / 224,256, dropout 0.4 everywhere, Dense 256-128-64 (2,128,874)."""
    # The code cell has BatchNorm only after the second conv of each block; the printed
    # summary shows one after every conv. The summary is built.
    return _sequential(
        "r000_proyecto_6",
        input_shape,
        [
            *_bn_block((64, 64), dropout=0.4),
            *_bn_block((128, 128), dropout=0.4),
            *_bn_block((224, 256), dropout=0.4),
            *_dense_head((256, 128, 64), (0.4, 0.4, 0.4), num_classes),
        ],
    )


@register()
def r000_proyecto_8(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Slimmer: BN convs 64,64 / 128,128 / 128, dropout 0.3, Dense 256-128 (968,522 params)."""
    return _sequential(
        "r000_proyecto_8",
        input_shape,
        [
            *_bn_block((64, 64), dropout=0.3),
            *_bn_block((128, 128), dropout=0.3),
            *_bn_block((128,), dropout=0.3),
            *_dense_head((256, 128), (0.3, 0.3), num_classes),
        ],
    )


@register()
def r000_proyecto_9(*, input_shape: tuple[int, int, int] = INPUT_SHAPE, num_classes: int = 10):
    """Proyecto 6's layers with dropout 0.3 instead of 0.4; the final model (2,128,874 params)."""
    # The code cell omits BatchNorm after the first and the last conv; the printed summary
    # shows one after every conv, exactly as proyecto 6. The summary is built.
    return _sequential(
        "r000_proyecto_9",
        input_shape,
        [
            *_bn_block((64, 64), dropout=0.3),
            *_bn_block((128, 128), dropout=0.3),
            *_bn_block((224, 256), dropout=0.3),
            *_dense_head((256, 128, 64), (0.3, 0.3, 0.3), num_classes),
        ],
    )
